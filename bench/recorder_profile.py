"""Where the recorder's handler CPU goes, batch by batch, outside the emulator.

    python -m bench.recorder_profile [--batch-size 3] [--events 300] [--stub-aws] [--profile]

The handler runs in this process on batches of SNS-signed ``AccountDeleted`` notifications (the
deployed recorder's checks all on: signature, topic, event rules, a batch's INSERTs in one
request); its AWS calls go to a moto server in a child process over loopback, so that the
server's CPU is not counted. Prints the handler's CPU (``time.process_time``, all its threads)
per batch and per event, after one warm-up batch. ``--stub-aws`` answers every AWS call at once
in-process (the handler's own code alone); ``--profile`` adds ``cProfile``'s table of the
handler's thread, on per-thread CPU time (the pool's writer threads are not in it: use
``--batch-size 1``, which writes in the handler's thread). Nothing is asserted; the README's
"Recorder CPU against the seed" quotes what this printed.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

REGION = "eu-west-1"
_TOPIC_ARN = f"arn:aws:sns:{REGION}:123456789012:audit-events"
_SERVER_START_SECONDS = 30.0


@dataclass(frozen=True)
class HandlerCpu:
    """The handler's CPU over the measured batches (the warm-up batch excluded)."""

    batches: int
    events: int
    cpu_ms: float

    @property
    def per_batch_ms(self) -> float:
        return self.cpu_ms / self.batches if self.batches else 0.0

    @property
    def per_event_ms(self) -> float:
        return self.cpu_ms / self.events if self.events else 0.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def _moto_server() -> Iterator[str]:
    """A moto server in a child process on loopback; yields its endpoint URL."""
    port = _free_port()
    code = (
        "import time; from moto.server import ThreadedMotoServer; "
        # The recorder's batched INSERTs, answered as the emulator answers them.
        "from audit_stack.local.control.partiql_inserts import PartiqlInsertHooks; "
        "PartiqlInsertHooks().install(); "
        f"ThreadedMotoServer(ip_address='127.0.0.1', port={port}, verbose=False).start(); "
        "time.sleep(10**6)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + _SERVER_START_SECONDS
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline or child.poll() is not None:
                raise SystemExit("the moto server did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        child.terminate()
        child.wait(timeout=10)


class _StubAws:
    """Answers the recorder's AWS calls at once: its own code alone is measured."""

    def put_item(self, **_: Any) -> dict[str, Any]:
        return {}

    def batch_execute_statement(self, **request: Any) -> dict[str, Any]:
        return {"Responses": [{} for _ in request["Statements"]]}

    def transact_write_items(self, **_: Any) -> dict[str, Any]:
        return {}


@dataclass
class _Context:
    """The Lambda context attributes the handler and Powertools read."""

    function_name: str = "recorder"
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:recorder"
    memory_limit_in_mb: str = "256"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/recorder"
    log_stream_name: str = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 29_500


def measure(
    batch_size: int, events: int, *, stub_aws: bool = False, profile: cProfile.Profile | None = None
) -> HandlerCpu:
    """Run the recorder's handler on ``events`` events in batches of ``batch_size``."""
    with contextlib.ExitStack() as stack:
        endpoint = "http://127.0.0.1:9" if stub_aws else stack.enter_context(_moto_server())
        os.environ.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_SESSION_TOKEN="testing",
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            AWS_ENDPOINT_URL=endpoint,
            POWERTOOLS_SERVICE_NAME="audit",
            POWERTOOLS_METRICS_NAMESPACE="Audit",
            POWERTOOLS_LOG_LEVEL="INFO",
            TOPIC_ARN=_TOPIC_ARN,
            TABLE_NAME="audit-events",
            EVENT_TYPE_INDEX_SHARDS="16",
        )
        if not stub_aws:
            _create_table()
        result = _run(batch_size, events, stub_aws=stub_aws, profile=profile)
    return result


def _create_table() -> None:
    """The audit table in moto (the recorder writes nothing else)."""
    import boto3

    from audit_stack.lambda_code import contract

    boto3.client("dynamodb").create_table(
        TableName="audit-events",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": contract.PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": contract.SORT_KEY, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": contract.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": contract.SORT_KEY, "KeyType": "RANGE"},
        ],
    )


def _run(
    batch_size: int, events: int, *, stub_aws: bool, profile: cProfile.Profile | None
) -> HandlerCpu:
    # Imported once the environment is set: Powertools reads it at import, as in Lambda.
    from audit_stack.lambda_code import audit_events_module
    from audit_stack.local.control.sns_signing import NotificationSigner

    event_module = audit_events_module("event")
    signature = audit_events_module("sns_signature")
    recorder = audit_events_module("record_audit_event")
    signer = NotificationSigner.generate(f"https://sns.{REGION}.amazonaws.com", folder="")
    signature.trust_certificate(signer.cert_url, signer.certificate_pem)
    if stub_aws:
        # The handler looks its clients up by this name at each call.
        recorder.__dict__["client"] = lambda *_args, **_kwargs: _StubAws()

    def record(index: int) -> dict[str, Any]:
        event = event_module.new_account_deleted(
            f"user{index}@example.com", now=datetime.now(UTC), event_id=str(uuid.uuid4())
        )
        fields = signer.sign(
            {
                "Type": "Notification",
                "MessageId": str(uuid.uuid4()),
                "TopicArn": _TOPIC_ARN,
                "Message": event.to_json(),
                "Timestamp": "2026-12-05T12:00:00.000Z",
            }
        )
        return {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": uuid.uuid4().hex,
            "body": json.dumps(fields, indent=2),
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
        }

    total = batch_size * (1 + max(1, events // batch_size))
    records = [record(index) for index in range(total)]
    batches = [records[at : at + batch_size] for at in range(0, total, batch_size)]
    context = _Context()
    cpu = 0.0
    # The log line and the metrics are written (and measured) as in Lambda, into a sink here.
    sink = io.StringIO()
    recorder.logger.registered_handler.setStream(sink)
    with contextlib.redirect_stdout(sink):
        for number, batch in enumerate(batches):
            started = time.process_time()
            if profile is not None and number:
                profile.enable()
            answer = recorder.handler({"Records": batch}, context)
            if profile is not None and number:
                profile.disable()
            if number:  # the first batch warms the clients and caches up
                cpu += time.process_time() - started
            if answer["batchItemFailures"]:
                raise SystemExit(f"the recorder failed messages: {answer}")
    measured = batches[1:]
    return HandlerCpu(len(measured), sum(len(batch) for batch in measured), cpu * 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recorder_profile")
    parser.add_argument("--batch-size", type=int, default=3, choices=range(1, 11))
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--stub-aws", action="store_true", help="answer AWS calls in-process")
    parser.add_argument("--profile", action="store_true", help="print cProfile's table too")
    arguments = parser.parse_args(argv)
    profile = cProfile.Profile(time.thread_time) if arguments.profile else None
    result = measure(
        arguments.batch_size, arguments.events, stub_aws=arguments.stub_aws, profile=profile
    )
    print(
        f"batches of {arguments.batch_size}: {result.batches} batches, {result.events} events, "
        f"CPU {result.per_batch_ms:.2f} ms per batch, {result.per_event_ms:.2f} ms per event"
        + (" (inflated by cProfile: compare only the table's shares)" if profile else "")
    )
    if profile is not None:
        pstats.Stats(profile, stream=sys.stdout).sort_stats("cumulative").print_stats(40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
