"""The recorder's per-batch handler time with a simulated DynamoDB latency per request.

The emulator's moto serialises writes, which would hide any overlap, so this runs the recorder's
real handler in this process against moto's in-process mock (with the emulator's PartiQL INSERT)
with every DynamoDB write request delayed by a fixed latency (``time.sleep``, which releases the
GIL as a network wait does). A batch of plain events is one BatchExecuteStatement request: the
handler waits about one latency per batch, where one PutItem per event waited ten. (Events with
an idempotency key are one transaction each, MAX_CONCURRENT_WRITES at a time; moto's in-process
transactions cost more CPU than the simulated wait, so their overlap is shown by
``tests/unit/lambdas/test_concurrent_writes.py`` rather than timed here.)
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from types import ModuleType
from typing import Any

from audit_stack.local.control.sns_signing import NotificationSigner
from bench.configurations import LAMBDAS_DIR

REGION = "us-east-1"
TOPIC_ARN = f"arn:aws:sns:{REGION}:123456789012:bench-audit"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:bench-audit"


@dataclass(frozen=True)
class LatencyRun:
    """Handler wall time per batch at one concurrency."""

    events: str
    """"plain" (one request per batch) or "idempotent" (a transaction per event)"""
    concurrent_writes: int
    """requests in flight at once"""
    latency_ms: float
    batch_size: int
    batches: int
    median_ms: float
    p95_ms: float
    modelled_wait_ms: float


class _Context:
    function_name = "bench-recorder"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:bench-recorder"
    memory_limit_in_mb = "256"
    aws_request_id = "bench"
    log_group_name = "/aws/lambda/bench-recorder"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@cache
def _signer() -> NotificationSigner:
    """The bench's SNS: its certificate is pinned in the recorder, as the emulator's is."""
    return NotificationSigner.generate(f"https://sns.{REGION}.amazonaws.com", folder="")


def _body(event_json: str) -> str:
    return json.dumps(
        _signer().sign(
            {
                "Type": "Notification",
                "MessageId": str(uuid.uuid4()),
                "TopicArn": TOPIC_ARN,
                "Message": event_json,
                "Timestamp": "2026-12-01T00:00:00.000Z",
                "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe",
                "MessageAttributes": {"event_type": {"Type": "String", "Value": "AccountDeleted"}},
            }
        )
    )


def _batch(size: int, first: int, *, idempotent: bool = False) -> dict[str, Any]:
    from audit_events.event import build_account_deleted_event

    records = []
    for index in range(first, first + size):
        payload = {"email": f"latency{index}@bench.example"}
        if idempotent:
            payload["idempotency_key"] = f"latency-{index}"
        event = build_account_deleted_event(payload, secret=b"bench", now=datetime.now(UTC))
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": uuid.uuid4().hex,
                "body": _body(event.to_json()),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


@contextmanager
def _mocked_recorder() -> Iterator[ModuleType]:
    from moto import mock_aws

    from audit_stack.local.control.partiql_inserts import PartiqlInsertHooks

    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "POWERTOOLS_SERVICE_NAME": "bench",
            "POWERTOOLS_METRICS_NAMESPACE": "Bench",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "EVENT_TYPE_INDEX_SHARDS": "16",
            "TOPIC_ARN": TOPIC_ARN,
        }
    )
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    if str(LAMBDAS_DIR) not in sys.path:
        sys.path.insert(0, str(LAMBDAS_DIR))
    inserts = PartiqlInsertHooks()
    inserts.install()
    try:
        with mock_aws():
            import boto3

            dynamodb = boto3.client("dynamodb")
            dynamodb.create_table(
                TableName="bench-audit",
                KeySchema=[
                    {"AttributeName": "subject", "KeyType": "HASH"},
                    {"AttributeName": "event_key", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "subject", "AttributeType": "S"},
                    {"AttributeName": "event_key", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            os.environ["TABLE_NAME"] = "bench-audit"
            from audit_events import clients, record_audit_event, sns_signature

            clients._client.cache_clear()
            sns_signature.trust_certificate(_signer().cert_url, _signer().certificate_pem)
            # Powertools reads its settings when the module is imported: again, under these.
            yield importlib.reload(record_audit_event)
            clients._client.cache_clear()
    finally:
        inserts.uninstall()
        os.environ.clear()
        os.environ.update(saved)


# The recorder's DynamoDB writes: a batch's plain events, an idempotent event, one event.
_WRITE_OPERATIONS = ("batch_execute_statement", "transact_write_items", "put_item")


def measure(latency_ms: float, batch_size: int = 10, batches: int = 20) -> list[LatencyRun]:
    """Per-batch handler time with ``latency_ms`` per DynamoDB write request (plain events)."""
    runs: list[LatencyRun] = []
    with _mocked_recorder() as recorder:
        own = recorder.MAX_CONCURRENT_WRITES
        context = _Context()
        client = recorder.client("dynamodb", context.get_remaining_time_in_millis() / 1000)
        originals = {name: getattr(client, name) for name in _WRITE_OPERATIONS}

        def slowed(original: Any) -> Any:
            def slow(**request: Any) -> Any:
                time.sleep(latency_ms / 1000)
                return original(**request)

            return slow

        for name, original in originals.items():
            setattr(client, name, slowed(original))
        sent = 0
        plans = [("plain", batch_size, -(-batch_size // recorder.MAX_STATEMENTS_PER_CALL))]
        try:
            for events, concurrent, requests in plans:
                setattr(recorder, "MAX_CONCURRENT_WRITES", concurrent)  # noqa: B010
                timings = []
                for _ in range(batches):
                    batch = _batch(batch_size, sent, idempotent=events == "idempotent")
                    sent += batch_size
                    started = time.perf_counter()
                    response = recorder.handler(batch, context)
                    timings.append((time.perf_counter() - started) * 1000)
                    if response["batchItemFailures"]:
                        raise RuntimeError(f"the recorder failed items: {response}")
                ordered = sorted(timings)
                runs.append(
                    LatencyRun(
                        events=events,
                        concurrent_writes=concurrent,
                        latency_ms=latency_ms,
                        batch_size=batch_size,
                        batches=batches,
                        median_ms=statistics.median(timings),
                        p95_ms=ordered[max(0, round(0.95 * len(ordered)) - 1)],
                        modelled_wait_ms=requests * latency_ms,
                    )
                )
        finally:
            setattr(recorder, "MAX_CONCURRENT_WRITES", own)  # noqa: B010
            for name, original in originals.items():
                setattr(client, name, original)
    return runs
