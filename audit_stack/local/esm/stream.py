"""The thread of one DynamoDB-stream event-source mapping: reads the table's stream records in
order, batches them (BatchSize, the batching window, Lambda's 6 MB payload limit), invokes the
function synchronously and moves its position past a batch only when the invocation succeeds.

As on AWS: a failed batch is retried, in order, never skipped, until MaximumRetryAttempts (-1:
until it succeeds); with ReportBatchItemFailures the position moves to the first failed record.
The emulator's stream has one shard and is moto's own in-process record list; as DynamoDB
does, it trims records 24 hours after they were written, by the emulator's clock
(``advance_time`` moves it: records written before a jump age with it), and a mapping that had
not read them by then never will (``TRIM_HOURS``). The mapping reads that list directly, but
only while the function's execution role may read the stream (``read_denied``: Lambda reads it
with that role's ``DescribeStream``, ``GetRecords``, ``GetShardIterator`` and ``ListStreams``);
while it may not, records wait in the stream, nothing is invoked and the mapping logs
``PROBLEM: ...`` once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from audit_stack.local.control.activity import Activity
from audit_stack.local.deploy.model import StreamSourceSpec
from audit_stack.local.runtime.pool import SYNC_PAYLOAD_LIMIT_BYTES, TooManyRequestsError
from audit_stack.local.runtime.registry import InvocationResult

# With nothing new, look again at least this often (every write wakes the worker at once).
_IDLE_RECHECK_SECONDS = 5.0
# Lambda retries a failed stream batch with back-off; the emulator waits this long between tries.
RETRY_BACKOFF_SECONDS = 0.2
# How long a mapping whose role may not read the stream waits before it asks again.
READ_DENIED_BACKOFF_SECONDS = 1.0
# "All data in DynamoDB Streams is subject to a 24-hour lifetime" (DynamoDB developer guide).
TRIM_HOURS = 24
# What DynamoDB writes as a stream record's userIdentity for a deletion by Time to Live.
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def stream_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A moto stream record in the shape of Lambda's DynamoDB event records."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = int(_utc(created).timestamp())
    shaped = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in record:
        shaped["userIdentity"] = record["userIdentity"]
    return shaped


def _utc(moment: datetime) -> datetime:
    """moto writes naive UTC datetimes; read them as UTC whatever the machine's time zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _written_ms(record: dict[str, Any]) -> float:
    """When moto wrote a stream record, real epoch milliseconds."""
    created = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
    return _utc(created).timestamp() * 1000 if isinstance(created, datetime) else time.time() * 1000


class StreamWorker:
    """One stream mapping's thread.

    :param shard_records: the table's stream records so far, oldest first (moto's list; looked up
        at each read, as moto replaces a table object when it rolls back a transaction).
    :param now_ms: the emulator's virtual clock, which the batching window waits on (so that
        ``run_until_idle`` can fast-forward it).
    :param read_denied: why the function's role may not read the stream now, or None.
    """

    def __init__(
        self,
        spec: StreamSourceSpec,
        *,
        shard_records: Callable[[], list[dict[str, Any]]],
        invoke: Callable[[str, bytes], InvocationResult],
        activity: Activity,
        region: str,
        now_ms: Callable[[], float],
        on_event: Callable[[str], None],
        read_denied: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.spec = spec
        self._records = shard_records
        self._read_denied = read_denied
        self._problem: str | None = None
        self._invoke = invoke
        self._activity = activity
        self._condition = activity.condition
        self._region = region
        self._now_ms = now_ms
        self._on_event = on_event
        self._position = 0 if spec.starting_position == "TRIM_HORIZON" else len(shard_records())
        # When each record was written by the emulator's clock (epoch ms), index for index.
        self._written: list[float] = []
        self._window_ends_ms: float | None = None
        self._paused = not spec.enabled
        self._holds = 0
        self._stopping = False
        self._busy = False
        self._thread = threading.Thread(
            target=self._run, name=f"stream-{spec.logical_id[:20]}", daemon=True
        )

    # -- state read by the idle scheduler (under activity.condition) ---------------------------

    @property
    def name(self) -> str:
        return f"{self.spec.table_name} stream"

    @property
    def paused(self) -> bool:
        return self._paused

    def pending(self) -> tuple[list[str], float | None]:
        """What keeps this source busy, and when the clock must show for it to go on (set only
        when it waits for nothing but its batching window)."""
        if self._busy:
            return [f"{self.name}: a batch being processed"], None
        waiting = len(self._records()) - self._position
        if waiting <= 0 or self._paused:
            # A paused source's records wait by design (stream_sources_paused): not pending.
            return [], None
        described = [f"{self.name}: {waiting} record(s) not yet delivered"]
        return described, self._window_ends_ms

    # -- control -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def pause(self) -> None:
        """Deliver nothing more until resumed (a batch under way finishes). Pauses nest: the
        source resumes when every pause has been resumed."""
        with self._condition:
            self._holds += 1
            self._paused = True
            self._condition.notify_all()
            self._condition.wait_for(lambda: not self._busy)

    def resume(self) -> None:
        with self._condition:
            self._holds = max(0, self._holds - 1)
            self._paused = self._holds > 0 or not self.spec.enabled
        self._activity.changed()

    def request_stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()

    def join(self) -> None:
        if self._thread.is_alive():
            self._thread.join()

    def stop(self) -> None:
        self.request_stop()
        self.join()

    def observe(self) -> None:
        """Note when each record not yet seen was written, by the emulator's clock. Called
        before the clock jumps (``advance_time``), so that records written before it age with
        it; a record first seen after a jump was written after it."""
        with self._condition:
            self._observe()

    def _observe(self) -> list[dict[str, Any]]:
        records = self._records()
        del self._written[len(records) :]  # (moto's list never shrinks; a guard all the same)
        if len(records) > len(self._written):
            offset_ms = self._now_ms() - time.time() * 1000
            self._written += [
                _written_ms(found) + offset_ms for found in records[len(self._written) :]
            ]
        return records

    def _trim(self) -> None:
        """Move past records older than the stream's 24-hour lifetime: gone unread."""
        limit = self._now_ms() - TRIM_HOURS * 3600 * 1000
        trimmed = 0
        while self._position < len(self._written) and self._written[self._position] < limit:
            self._position += 1
            trimmed += 1
        if trimmed:
            self._on_event(
                f"{self.name}: {trimmed} record(s) trimmed unread, older than {TRIM_HOURS} hours"
            )

    # -- the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if self._may_read():
                self._deliver(batch)

    def _may_read(self) -> bool:
        """Whether the role may read the stream now; if not, the batch stays in the stream and
        the worker waits (a problem is logged when it starts, and its end when it ends)."""
        problem = self._read_denied()
        if problem != self._problem:
            self._problem = problem
            self._on_event(
                f"{self.name}: PROBLEM: {problem}" if problem else f"{self.name}: stream readable"
            )
        if problem is None:
            return True
        with self._condition:
            self._busy = False
            self._condition.notify_all()
            self._condition.wait_for(lambda: self._stopping, READ_DENIED_BACKOFF_SECONDS)
        return False

    def _next_batch(self) -> list[dict[str, Any]] | None:
        """The next batch once it is due (full, or its window over); None when stopping."""
        with self._condition:
            while True:
                if self._stopping:
                    return None
                records = self._observe()
                self._trim()
                available = records[self._position :]
                if self._paused or not available:
                    self._window_ends_ms = None
                    self._condition.wait(_IDLE_RECHECK_SECONDS)
                    continue
                window_ms = self.spec.batching_window_seconds * 1000
                if self._window_ends_ms is None:
                    self._window_ends_ms = self._now_ms() + window_ms
                full = len(available) >= self.spec.batch_size
                remaining_ms = self._window_ends_ms - self._now_ms()
                if full or remaining_ms <= 0:
                    self._window_ends_ms = None
                    self._busy = True
                    return self._fitting(available[: self.spec.batch_size])
                self._condition.wait(min(remaining_ms / 1000 + 0.001, _IDLE_RECHECK_SECONDS))

    def _fitting(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The longest prefix whose event fits Lambda's 6 MB payload (at least one record)."""
        size = len(b'{"Records": []}')
        for count, record in enumerate(records):
            size += len(json.dumps(self._shaped(record), default=str).encode()) + 2
            if size > SYNC_PAYLOAD_LIMIT_BYTES:
                return records[: max(count, 1)]
        return records

    def _shaped(self, record: dict[str, Any]) -> dict[str, Any]:
        return stream_record(record, self.spec.stream_arn, self._region)

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Invoke until the batch succeeds (or its retries are spent), then move past it."""
        attempts = 0
        try:
            while not self._stopping:
                payload = json.dumps(
                    {"Records": [self._shaped(record) for record in batch]}, default=str
                ).encode()
                succeeded_until = self._attempt(payload, batch)
                if succeeded_until == len(batch):
                    self._advance(len(batch), f"batch of {len(batch)} -> ok")
                    return
                if succeeded_until > 0:  # ReportBatchItemFailures: resume at the first failure
                    self._advance(succeeded_until, f"{succeeded_until} of {len(batch)} -> ok")
                    batch = batch[succeeded_until:]
                attempts += 1
                retries = self.spec.max_retry_attempts
                if 0 <= retries < attempts:
                    self._advance(
                        len(batch),
                        f"batch of {len(batch)} failed {attempts} times: skipped "
                        "(MaximumRetryAttempts)",
                    )
                    return
                with self._condition:
                    self._condition.wait_for(lambda: self._stopping, RETRY_BACKOFF_SECONDS)
        finally:
            with self._condition:
                self._busy = False
                self._condition.notify_all()

    def _attempt(self, payload: bytes, batch: list[dict[str, Any]]) -> int:
        """How many records of ``batch``, from the first, the invocation processed."""
        try:
            result = self._invoke(self.spec.function_name, payload)
        except TooManyRequestsError:
            return 0
        except Exception as error:
            if not self._stopping:
                self._on_event(f"{self.name}: batch of {len(batch)} failed: {error!r}")
            return 0
        if result.function_error:
            self._on_event(f"{self.name}: batch of {len(batch)} -> function error, retried")
            return 0
        if not self.spec.report_batch_item_failures:
            return len(batch)
        return _processed_until(batch, result.payload)

    def _advance(self, count: int, what: str) -> None:
        with self._condition:
            self._position += count
            self._condition.notify_all()
        self._on_event(f"{self.name}: {what}")
        self._activity.changed()


def _processed_until(batch: list[dict[str, Any]], payload: bytes) -> int:
    """With ReportBatchItemFailures: the records before the first failed one. An answer that is
    not a valid report fails the whole batch, as Lambda treats it."""
    try:
        response = json.loads(payload) if payload else None
    except ValueError:
        return 0
    if response is None:
        return len(batch)
    if not isinstance(response, dict):
        return 0
    failures = response.get("batchItemFailures") or []
    if not isinstance(failures, list):
        return 0
    sequence = [record["dynamodb"]["SequenceNumber"] for record in batch]
    failed: list[int] = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if identifier not in sequence:
            return 0
        failed.append(sequence.index(identifier))
    return min(failed) if failed else len(batch)
