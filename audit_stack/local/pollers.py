"""SQS event-source mappings: background pollers that invoke a function with batches, like Lambda.

They honour the mapping's BatchSize, MaximumBatchingWindowInSeconds, ScalingConfig and
ReportBatchItemFailures, and the queue's own visibility timeout and redrive policy (moto moves a
message to the dead-letter queue on the receive after its maxReceiveCount-th).
"""

from __future__ import annotations

import base64
import functools
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from audit_stack.local.activity import Activity
from audit_stack.local.functions import InvocationResult
from audit_stack.local.moto_state import QueueSnapshot

# Without ScalingConfig, Lambda starts an SQS event source with five concurrent batches (and scales
# up to 1,250); five keeps a laptop responsive.
DEFAULT_MAX_CONCURRENCY = 5
_RECEIVE_LIMIT = 10  # SQS's ReceiveMessage maximum
_MAX_BATCH_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
# With nothing to receive, look again at least this often (a safety net: every send, publish and
# clock move wakes the poller at once).
_IDLE_RECHECK_SECONDS = 5.0
# A receive that found visible messages but got none (e.g. a FIFO group in flight) retries soon.
_BLOCKED_RECHECK_SECONDS = 0.05


@dataclass(frozen=True)
class EventSourceSpec:
    """An AWS::Lambda::EventSourceMapping of the template, resolved."""

    logical_id: str
    uuid: str
    queue_arn: str
    queue_url: str
    queue_name: str
    function_name: str
    batch_size: int
    batching_window_seconds: float
    max_concurrency: int | None
    report_batch_item_failures: bool
    enabled: bool


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message (as boto3 receives it) in the format of Lambda's SQS event records."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update(
        {
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
    )
    return record


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    converted["stringListValues"] = list(value.get("StringListValues", []))
    converted["binaryListValues"] = [
        base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])
    ]
    converted["dataType"] = value["DataType"]
    return converted


def successful_messages(
    messages: list[dict[str, Any]], result: InvocationResult, *, report_batch_item_failures: bool
) -> list[dict[str, Any]]:
    """The messages of a batch that Lambda deletes after this invocation result.

    A function error or timeout deletes none. With ReportBatchItemFailures, an empty or null
    response or batchItemFailures list deletes all, and an invalid one (not JSON, an empty, null
    or unknown itemIdentifier) deletes none, as AWS documents.
    """
    if result.function_error is not None:
        return []
    if not report_batch_item_failures:
        return messages
    try:
        response = json.loads(result.payload) if result.payload else None
    except ValueError:
        return []
    if not isinstance(response, dict):
        return messages
    failures = response.get("batchItemFailures")
    if failures is None:
        return messages
    if not isinstance(failures, list):
        return []
    ids = {message["MessageId"] for message in messages}
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in ids:
            return []
        failed.add(identifier)
    return [message for message in messages if message["MessageId"] not in failed]


class SqsPoller:
    """One event-source mapping: receives batches and hands them to a pool of invocations."""

    def __init__(
        self,
        spec: EventSourceSpec,
        *,
        sqs: Any,
        invoke: Callable[[str, bytes], InvocationResult],
        activity: Activity,
        region: str,
        snapshot: Callable[[], QueueSnapshot],
        now_ms: Callable[[], float],
        on_event: Callable[[str], None],
    ) -> None:
        self.spec = spec
        self._sqs = sqs
        self._invoke = invoke
        self._activity = activity
        self._condition = activity.condition
        self._region = region
        self._snapshot = snapshot
        self._now_ms = now_ms
        self._on_event = on_event
        self.max_concurrency = spec.max_concurrency or DEFAULT_MAX_CONCURRENCY
        self._executor = ThreadPoolExecutor(
            max_workers=self.max_concurrency, thread_name_prefix=f"poller-{spec.logical_id[:20]}"
        )
        self._thread = threading.Thread(
            target=self._run, name=f"poller-{spec.logical_id[:20]}", daemon=True
        )
        self._paused = not spec.enabled
        self._stopping = False
        self._receiving = False
        self._active_batches = 0
        self._held: dict[str, int] = {}

    # -- state read by the pipeline (under activity.condition) ---------------------------------

    @property
    def busy(self) -> bool:
        """A receive or an invocation is under way."""
        return self._receiving or self._active_batches > 0

    @property
    def active_batches(self) -> int:
        return self._active_batches

    @property
    def held_message_ids(self) -> set[str]:
        return set(self._held)

    @property
    def paused(self) -> bool:
        return self._paused

    # -- control -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def pause(self) -> None:
        """Stop receiving (like disabling the mapping); batches under way finish."""
        with self._condition:
            self._paused = True
            self._condition.wait_for(lambda: not self._receiving)

    def resume(self) -> None:
        with self._condition:
            self._paused = not self.spec.enabled
        self._activity.changed()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        self._executor.shutdown(wait=True)

    # -- the polling loop ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(
                    lambda: (
                        self._stopping
                        or (not self._paused and self._active_batches < self.max_concurrency)
                    )
                )
                if self._stopping:
                    return
                self._receiving = True
                seen = self._activity.generation
            batch: list[dict[str, Any]] = []
            try:
                batch = self._receive_batch(seen)
            except Exception as error:
                if not self._stopping:
                    self._on_event(f"receive from {self.spec.queue_name} failed: {error}")
            with self._condition:
                self._receiving = False
                if batch:
                    self._active_batches += 1
                    for message in batch:
                        self._held[message["MessageId"]] = (
                            self._held.get(message["MessageId"], 0) + 1
                        )
                self._condition.notify_all()
            if batch:
                self._executor.submit(self._process, batch)
            else:
                self._wait_for_messages(seen)

    def _receive(self, count: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.spec.queue_url,
            MaxNumberOfMessages=count,
            # The emulator wakes pollers on every send instead of holding a long poll open.
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _receive_batch(self, seen: int) -> list[dict[str, Any]]:
        spec = self.spec
        messages = self._receive(min(_RECEIVE_LIMIT, spec.batch_size))
        if not messages or spec.batching_window_seconds <= 0:
            return messages
        # The batching window: keep gathering until the batch or the payload is full.
        deadline = time.monotonic() + spec.batching_window_seconds
        while len(messages) < spec.batch_size and not self._stopping:
            if sum(len(message["Body"]) for message in messages) >= _MAX_BATCH_BYTES:
                break
            got = self._receive(min(_RECEIVE_LIMIT, spec.batch_size - len(messages)))
            messages += got
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if not got:
                with self._condition:
                    self._condition.wait_for(functools.partial(self._woken, seen), remaining)
                    seen = self._activity.generation
        return messages

    def _wait_for_messages(self, seen: int) -> None:
        snapshot = self._snapshot()
        timeout = _IDLE_RECHECK_SECONDS
        if snapshot.visible:
            timeout = _BLOCKED_RECHECK_SECONDS
        next_change = snapshot.next_change_ms()
        if next_change is not None:
            # A message becomes visible (or its delay ends) by itself in real time.
            timeout = min(timeout, max(next_change - self._now_ms(), 0.0) / 1000 + 0.001)
        with self._condition:
            self._condition.wait_for(functools.partial(self._woken, seen), timeout)

    def _woken(self, seen_generation: int) -> bool:
        """Stopping, or something changed since the receive that found nothing."""
        return self._stopping or self._activity.generation != seen_generation

    def _process(self, messages: list[dict[str, Any]]) -> None:
        try:
            event = {
                "Records": [
                    sqs_record(message, self.spec.queue_arn, self._region) for message in messages
                ]
            }
            result = self._invoke(self.spec.function_name, json.dumps(event).encode())
            done = successful_messages(
                messages, result, report_batch_item_failures=self.spec.report_batch_item_failures
            )
            self._delete(done)
            self._on_event(
                f"{self.spec.queue_name}: batch of {len(messages)} -> "
                f"{'function error' if result.function_error else 'ok'}, "
                f"{len(done)} deleted, {len(messages) - len(done)} left for retry"
            )
        except Exception as error:
            # Throttled, or the emulator is shutting down: as on Lambda, whatever was not
            # deleted comes back after its visibility timeout.
            if not self._stopping:
                self._on_event(f"batch from {self.spec.queue_name} failed: {error!r}")
        finally:
            with self._condition:
                self._active_batches -= 1
                for message in messages:
                    count = self._held.pop(message["MessageId"], 0) - 1
                    if count > 0:
                        self._held[message["MessageId"]] = count
                self._condition.notify_all()

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), _RECEIVE_LIMIT):
            chunk = messages[start : start + _RECEIVE_LIMIT]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.spec.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                self._on_event(f"delete from {self.spec.queue_name} failed: {failure}")
