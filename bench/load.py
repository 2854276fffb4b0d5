"""Load runs of N events through a configuration, from its publisher function to its table.

``run_load`` is end to end and closed-loop with a bounded backlog: a few threads each invoke the
publisher again as soon as its previous invocation returned, unless the event-source queue
already holds more than BACKLOG_LIMIT messages, while the event source records concurrently.
Both halves share this machine's cores, as they would not on AWS.

``run_drain`` measures the recording side alone: events are published while the event source is
paused, then the time to record them is measured, in waves of at most DRAIN_WAVE events.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from audit_stack.lambda_code import contract
from audit_stack.local import LocalAuditPipeline, OperationCount
from audit_stack.local.control.moto_hooks import queue_snapshot
from bench.configurations import Configuration
from bench.items import item_size

_SAMPLE_SECONDS = 1.0
_GATE_CHECK_SECONDS = 0.05
# Publishers wait while the event-source queue holds more than this: 20 full batches of 10.
BACKLOG_LIMIT = 200
# Drain waves stay this small for the same reason: moto scans the whole queue on each receive.
DRAIN_WAVE = 1000
# Run events are told apart from warm-up events by their e-mail's local part.
RUN_PREFIX = "bench-"
WARMUP_PREFIX = "warmup-"
EMAIL_DOMAIN = "bench.example"


@dataclass
class FunctionUse:
    """The invocations of one function during a run.

    :param durations_ms: as the emulator measured them (hand-off and shared CPU included).
    :param cpu_ms: the handler's own CPU time in each, as its worker measured it.
    :param batch_sizes: SQS records in each invocation's event (0: not an SQS batch).
    :param log_bytes: the UTF-8 bytes of the lines each invocation wrote to stdout/stderr, as
        the emulator captured them (the function's own lines; not Lambda's START/REPORT).
    :param log_events: how many lines each invocation wrote (CloudWatch log events).
    """

    logical_id: str
    durations_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    log_bytes: list[int] = field(default_factory=list)
    log_events: list[int] = field(default_factory=list)
    errors: int = 0

    @property
    def invocations(self) -> int:
        return len(self.durations_ms)

    @property
    def billed_ms(self) -> int:
        """Lambda's billed duration: each invocation rounded up to the millisecond."""
        return sum(math.ceil(duration) for duration in self.durations_ms)

    @property
    def mean_ms(self) -> float:
        return sum(self.durations_ms) / len(self.durations_ms) if self.durations_ms else 0.0


@dataclass
class SealRun:
    """The sealer over everything a load run recorded: the table's stream, held back during the
    run, delivered at its end as one batching window would (the run's records in one batch)."""

    requests: dict[str, OperationCount]
    function: FunctionUse
    records_sealed: int
    digests_written: int
    payload_bytes: int = 0
    """the sealer's events' size (the stream records as Lambda delivers them), in bytes"""


@dataclass
class Usage:
    """What a run asked of AWS, for the cost model: counted requests and invocations."""

    recorded: int
    requests: dict[str, OperationCount]
    functions: dict[str, FunctionUse]
    publisher: str
    """logical id of the publisher function (the application's deleteAccount)"""
    seal: SealRun | None
    """the sealer's run over the run's records (None: the configuration has no sealer)"""


@dataclass
class LoadResult:
    """What one run of N events through one configuration measured."""

    configuration: str
    events: int
    publishers: int
    recorded: int
    duplicates: int
    dead_lettered: int
    latencies_ms: list[float]
    span_seconds: float
    wall_seconds: float
    max_queue_depth: int
    index_keys: list[str]
    """the by-type index key of each recorded item (empty without such an index)"""
    table_keys: list[str]
    """the table partition key of each item the run wrote"""
    item_sizes: list[int]
    """each item's size as DynamoDB bills it (bytes)"""
    requests: dict[str, OperationCount]
    functions: dict[str, FunctionUse]
    publisher: str
    """logical id of the publisher function (the application's deleteAccount)"""
    seal: SealRun | None = None
    """the sealer's run over the run's records (None: the configuration has no sealer)"""

    @property
    def usage(self) -> Usage:
        return Usage(self.recorded, self.requests, self.functions, self.publisher, self.seal)

    @property
    def throughput(self) -> float:
        """Audited events per second: records over first publish to last record."""
        return self.recorded / self.span_seconds if self.span_seconds > 0 else 0.0

    def latency_percentile(self, percent: float) -> float:
        """Nearest-rank percentile of publish-to-record latency, in milliseconds."""
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return math.nan
        rank = max(1, math.ceil(percent / 100 * len(ordered)))
        return ordered[rank - 1]


class _InvocationTracker:
    """Collects every finished invocation once (the emulator keeps only the latest 10,000)."""

    def __init__(self, pipeline: LocalAuditPipeline) -> None:
        self._pipeline = pipeline
        self._seen: set[str] = set()
        self.by_function: dict[str, FunctionUse] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-invocations", daemon=True)
        self._logical_ids = {spec.name: spec.logical_id for spec in pipeline.deployment.functions}

    def start(self, *, poll: bool = True) -> None:
        """Note what finished so far (the warm-up: not part of the run); ``poll``: sweep every
        second (needed past the emulator's 10,000 kept invocations) rather than at stop."""
        self._seen = {invocation.request_id for invocation in self._pipeline.invocations()}
        if poll:
            self._thread.start()

    def stop(self) -> dict[str, FunctionUse]:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()
        self._sweep()
        return self.by_function

    def _run(self) -> None:
        while not self._stopped.wait(_SAMPLE_SECONDS):
            self._sweep()

    def _sweep(self) -> None:
        for invocation in self._pipeline.invocations():
            if invocation.request_id in self._seen:
                continue
            self._seen.add(invocation.request_id)
            logical_id = self._logical_ids[invocation.function_name]
            use = self.by_function.setdefault(logical_id, FunctionUse(logical_id))
            use.durations_ms.append(invocation.duration_seconds * 1000)
            use.cpu_ms.append((invocation.cpu_seconds or 0.0) * 1000)
            event = invocation.event if isinstance(invocation.event, dict) else {}
            records = event.get("Records")
            use.batch_sizes.append(len(records) if isinstance(records, list) else 0)
            use.log_bytes.append(sum(len(line.encode("utf-8")) for line in invocation.logs))
            use.log_events.append(len(invocation.logs))
            use.errors += not invocation.succeeded


class _QueueGate:
    """Holds the publishers back while the event-source queue is over its limit, and notes the
    deepest it got (messages visible, in flight or delayed).

    A bounded backlog makes each configuration run at its recording capacity without an
    ever-growing queue: moto scans a whole queue on every receive, so an unbounded backlog would
    slow down the emulator itself rather than the configuration under test.
    """

    def __init__(self, pipeline: LocalAuditPipeline, limit: int) -> None:
        self._pipeline = pipeline
        self._queues = [source.queue_name for source in pipeline.deployment.event_sources]
        self._limit = limit
        self._room = threading.Event()
        self._room.set()
        self.max_depth = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-queue-gate", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        self._stopped.set()
        self._thread.join()
        self._room.set()
        return self.max_depth

    def wait_for_room(self) -> None:
        self._room.wait()

    def _run(self) -> None:
        while not self._stopped.wait(_GATE_CHECK_SECONDS):
            depth = sum(
                queue_snapshot(self._pipeline.account_id, self._pipeline.region, name).total
                for name in self._queues
            )
            self.max_depth = max(self.max_depth, depth)
            if depth > self._limit:
                self._room.clear()
            else:
                self._room.set()


def _publish(
    pipeline: LocalAuditPipeline,
    emails: list[str],
    publishers: int,
    gate: _QueueGate | None = None,
) -> None:
    def publish(email: str) -> None:
        if gate is not None:
            gate.wait_for_room()
        pipeline.invoke("publisher", {"email": email})

    with ThreadPoolExecutor(max_workers=publishers, thread_name_prefix="bench-publish") as pool:
        for _ in pool.map(publish, emails):
            pass


def _scan(pipeline: LocalAuditPipeline) -> list[dict[str, Any]]:
    dynamodb = pipeline.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=pipeline.outputs["TableName"]):
        items += page["Items"]
    return items


def _key(item: dict[str, Any], attributes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(item[name]["S"] for name in attributes)


def _keys(pipeline: LocalAuditPipeline, attributes: tuple[str, ...]) -> set[tuple[str, ...]]:
    return {_key(item, attributes) for item in _scan(pipeline)}


def _timestamp(item: dict[str, Any], attribute: str) -> datetime:
    return datetime.strptime(item[attribute]["S"], contract.TIMESTAMP_FORMAT)


def _dead_lettered(pipeline: LocalAuditPipeline) -> int:
    attributes = pipeline.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.outputs["DeadLetterQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def run_load(configuration: Configuration, events: int, publishers: int) -> LoadResult:
    """Deploy the configuration afresh, warm it up, then publish ``events`` and wait for them."""
    with LocalAuditPipeline(configuration.assembly_dir, configuration.stack_name) as pipeline:
        # Warm-up: one execution environment per publisher thread, and the recorder's, so that
        # the run measures the steady state (cold starts are measured separately).
        warmup = [f"{WARMUP_PREFIX}{index}@{EMAIL_DOMAIN}" for index in range(2 * publishers)]
        _publish(pipeline, warmup, publishers)
        pipeline.run_until_idle(timeout=120)
        attributes = configuration.key_attributes
        before = _keys(pipeline, attributes)

        tracker = _InvocationTracker(pipeline)
        gate = _QueueGate(pipeline, BACKLOG_LIMIT)
        held = contextlib.ExitStack()
        held.enter_context(pipeline.stream_sources_paused())  # sealed apart, below
        pipeline.instrumentation.reset_counts()
        tracker.start()
        gate.start()
        started = time.monotonic()
        emails = [f"{RUN_PREFIX}{index}@{EMAIL_DOMAIN}" for index in range(events)]
        _publish(pipeline, emails, publishers, gate)
        pipeline.run_until_idle(timeout=max(300.0, events * 0.5))
        wall_seconds = time.monotonic() - started
        # Read before anything else talks to the emulator: the counts are the run's own.
        requests = pipeline.instrumentation.counts()
        functions = tracker.stop()
        max_depth = gate.stop()
        seal = _seal(pipeline, held) if "sealer" in pipeline.function_roles else None
        held.close()

        # The run's records: everything but the warm-up's (subjects may be pseudonyms, so the
        # e-mail's prefix cannot tell them apart).
        items = [item for item in _scan(pipeline) if _key(item, attributes) not in before]
        per_subject = Counter(item[configuration.subject_attribute]["S"] for item in items)
        occurred = [_timestamp(item, configuration.occurred_attribute) for item in items]
        recorded = [_timestamp(item, configuration.recorded_attribute) for item in items]
        latencies = [
            (done - began).total_seconds() * 1000
            for began, done in zip(occurred, recorded, strict=True)
        ]
        span = (max(recorded) - min(occurred)).total_seconds() if items else 0.0
        return LoadResult(
            configuration=configuration.key,
            events=events,
            publishers=publishers,
            recorded=len(per_subject),
            duplicates=sum(count - 1 for count in per_subject.values()),
            dead_lettered=_dead_lettered(pipeline),
            latencies_ms=latencies,
            span_seconds=span,
            wall_seconds=wall_seconds,
            max_queue_depth=max_depth,
            index_keys=[
                item["event_type_shard"]["S"] for item in items if "event_type_shard" in item
            ],
            table_keys=[item[attributes[0]]["S"] for item in items],
            item_sizes=[item_size(item) for item in items],
            requests=requests,
            functions=functions,
            publisher=_publisher(pipeline),
            seal=seal,
        )


def _seal(pipeline: LocalAuditPipeline, held: contextlib.ExitStack) -> SealRun:
    """Let the table's stream, held back during the run, reach the sealer (one batching window
    over everything the run recorded), counting its requests apart from the run's."""
    tracker = _InvocationTracker(pipeline)
    pipeline.instrumentation.reset_counts()
    tracker.start(poll=False)
    seen = {invocation.request_id for invocation in pipeline.invocations("sealer")}
    held.close()
    pipeline.run_until_idle(timeout=300)
    requests = pipeline.instrumentation.counts()
    uses = tracker.stop()
    sealer = pipeline.function_name("sealer")
    delivered = [
        invocation
        for invocation in pipeline.invocations("sealer")
        if invocation.request_id not in seen and invocation.function_name == sealer
    ]
    (function,) = [use for logical_id, use in uses.items() if logical_id == _logical(pipeline)]
    return SealRun(
        requests=requests,
        function=function,
        records_sealed=sum(len(found.event.get("Records", [])) for found in delivered),
        digests_written=requests["kms:Sign"].requests if "kms:Sign" in requests else 0,
        payload_bytes=sum(len(json.dumps(found.event).encode()) for found in delivered),
    )


def _logical(pipeline: LocalAuditPipeline) -> str:
    """The sealer's logical id."""
    return next(
        spec.logical_id
        for spec in pipeline.deployment.functions
        if spec.name == pipeline.function_name("sealer")
    )


@dataclass(frozen=True)
class DrainResult:
    """The recording side alone: how long a paused-then-resumed backlog took to record."""

    configuration: str
    events: int
    recorded: int
    drain_seconds: float
    waves: int
    usage: Usage
    """publishing and recording the backlog: full batches, as at a high event rate"""

    @property
    def throughput(self) -> float:
        """Recorded events per second of draining."""
        return self.recorded / self.drain_seconds if self.drain_seconds > 0 else 0.0


def run_drain(configuration: Configuration, events: int, publishers: int) -> DrainResult:
    """Deploy afresh; in waves, publish with the event source paused, then time the recording."""
    with LocalAuditPipeline(configuration.assembly_dir, configuration.stack_name) as pipeline:
        warmup = [f"{WARMUP_PREFIX}{index}@{EMAIL_DOMAIN}" for index in range(2 * publishers)]
        _publish(pipeline, warmup, publishers)
        pipeline.run_until_idle(timeout=120)
        attributes = configuration.key_attributes
        before = _keys(pipeline, attributes)
        drained = 0.0
        waves = 0
        tracker = _InvocationTracker(pipeline)
        held = contextlib.ExitStack()
        held.enter_context(pipeline.stream_sources_paused())  # sealed apart, below
        pipeline.instrumentation.reset_counts()
        # Swept once at the end while the run's invocations (at most two per event) fit in the
        # emulator's 10,000 kept ones, so that no sampling thread runs while the drain is timed.
        tracker.start(poll=2 * events >= 10_000)
        for first in range(0, events, DRAIN_WAVE):
            last = min(first + DRAIN_WAVE, events)
            with pipeline.event_sources_paused():
                _publish(
                    pipeline,
                    [f"{RUN_PREFIX}{index}@{EMAIL_DOMAIN}" for index in range(first, last)],
                    publishers,
                )
                started = time.monotonic()
            pipeline.run_until_idle(timeout=max(300.0, (last - first) * 0.5))
            drained += time.monotonic() - started
            waves += 1
        requests = pipeline.instrumentation.counts()
        functions = tracker.stop()
        seal = _seal(pipeline, held) if "sealer" in pipeline.function_roles else None
        held.close()
        recorded = {
            item[configuration.subject_attribute]["S"]
            for item in _scan(pipeline)
            if _key(item, attributes) not in before
        }
        usage = Usage(len(recorded), requests, functions, _publisher(pipeline), seal)
        return DrainResult(configuration.key, events, len(recorded), drained, waves, usage)


def _publisher(pipeline: LocalAuditPipeline) -> str:
    return next(
        spec.logical_id
        for spec in pipeline.deployment.functions
        if spec.name == pipeline.function_name("publisher")
    )
