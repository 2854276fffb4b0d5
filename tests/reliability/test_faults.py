"""Faults: throttled and failing writes, recorders killed mid-batch, a table outage; none lost."""

from __future__ import annotations

import threading

import pytest

from audit_stack.local import DYNAMODB_WRITE_FAULTS, InjectedFault, LocalAuditPipeline
from tests.reliability.conftest import SIZES, Row, report
from tests.reliability.helpers import account, dead_letter_count, publish, recorded_event_ids

pytestmark = pytest.mark.e2e

# The recorder's writes: a batch's events in one request of PartiQL INSERTs.
WRITES = "dynamodb:BatchExecuteStatement"
FAULT_RATE = 0.2
SEED = 20261129
# Long enough that a held write surely is mid-batch when its recorder is killed.
HOLD_SECONDS = 5.0


def _kill_recorders_mid_batch(
    pipeline: LocalAuditPipeline,
    after_writes: list[int],
    killed: list[int],
    failures: list[BaseException],
) -> None:
    """At each count of events written, hold the table's writes so a recorder sits mid-batch,
    and kill it."""
    try:
        _kill_at(pipeline, after_writes, killed)
    except BaseException as error:  # re-raised by the test, which cannot see this thread's
        failures.append(error)


def _kill_at(pipeline: LocalAuditPipeline, after_writes: list[int], killed: list[int]) -> None:
    instrumentation = pipeline.instrumentation
    for threshold in after_writes:

        def reached(threshold: int = threshold) -> bool:
            # The INSERTs that stored their item or found it stored: one write unit each (an
            # item is well under 1 KB).
            found = instrumentation.counts().get(WRITES)
            return found is not None and found.item_write_units >= threshold

        pipeline.wait_until(reached, timeout=300, what=f"{threshold} events written")
        with pipeline.inject_fault(WRITES, latency=HOLD_SECONDS):
            victims: list[int] = []
            # A write that was already past the hold may finish first: then wait for a held one.
            while not victims:
                pipeline.wait_until(
                    lambda: instrumentation.in_progress(WRITES) > 0,
                    timeout=60,
                    what="a recorder waiting on held writes",
                )
                victims = pipeline.kill_busy_workers("recorder")
            killed += victims


def test_every_event_is_recorded_once_despite_throttling_server_errors_and_killed_recorders(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline
    events = SIZES.fault_events
    emails = [f"fault-{index}@reliability.example" for index in range(events)]
    spacing = events // (SIZES.recorder_kills + 1)
    killed: list[int] = []
    killer_failures: list[BaseException] = []
    killer = threading.Thread(
        target=_kill_recorders_mid_batch,
        args=(
            pipeline,
            [spacing * (turn + 1) for turn in range(SIZES.recorder_kills)],
            killed,
            killer_failures,
        ),
    )

    with pipeline.instrumentation.inject_faults(
        WRITES, rate=FAULT_RATE, faults=DYNAMODB_WRITE_FAULTS, seed=SEED
    ) as injector:
        killer.start()
        published = publish(pipeline, emails)
        killer.join()
        if killer_failures:
            raise killer_failures[0]
        pipeline.run_until_idle(timeout=600)
    # Redrive where the design needs it: a message whose every receive failed is in the DLQ.
    redriven = pipeline.redrive_dlq() if dead_letter_count(pipeline) else 0
    pipeline.run_until_idle(timeout=300)

    ledger = account(published, recorded_event_ids(pipeline))
    writes = pipeline.instrumentation.counts()[WRITES]
    crashed = [
        invocation
        for invocation in pipeline.invocations("recorder")
        if invocation.error and invocation.error.get("errorType") == "Runtime.ExitError"
    ]
    kinds = ", ".join(f"{count} {code}" for code, count in sorted(injector.injected.items()))
    report(
        Row(
            check=f"faults: {FAULT_RATE:.0%} of writes fail (seed {SEED}), recorders killed",
            tried=f"{events:,} events",
            what_happened=(
                f"{injector.injected_total} faults injected in {injector.seen} writes ({kinds}); "
                f"{len(killed)} recorder(s) killed mid-batch; "
                f"{writes.statement_errors['DuplicateItem']} redeliveries found already "
                f"recorded; {redriven} redriven from the DLQ"
            ),
            recorded=ledger.recorded,
            lost=ledger.lost,
            duplicates=ledger.duplicates,
            passed=ledger.exact and bool(killed) and injector.injected_total > 0,
        )
    )
    assert injector.injected_total > 0
    assert killed and len(crashed) >= len(killed)
    # Writes that succeeded before a kill or behind a lost answer came back and were recognised.
    assert writes.statement_errors["DuplicateItem"] > 0
    assert ledger.exact, ledger
    assert dead_letter_count(pipeline) == 0


def test_events_dead_lettered_during_a_table_outage_are_recorded_once_after_redrive(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline
    events = SIZES.outage_events
    emails = [f"outage-{index}@reliability.example" for index in range(events)]

    # A deployment that broke the recorder's role: every write is refused, and not retried by
    # the SDK, so every event exhausts its receives and lands in the DLQ.
    with pipeline.instrumentation.inject_faults(
        WRITES, rate=1.0, faults=[InjectedFault("AccessDeniedException")], seed=SEED
    ):
        published = publish(pipeline, emails)
        pipeline.run_until_idle(timeout=300)
        dead_lettered = dead_letter_count(pipeline)
        recorded_during_outage = sum(recorded_event_ids(pipeline).values())

    redriven = pipeline.redrive_dlq()
    pipeline.run_until_idle(timeout=300)

    ledger = account(published, recorded_event_ids(pipeline))
    report(
        Row(
            check="outage: every write refused, then DLQ redrive",
            tried=f"{events:,} events",
            what_happened=f"{dead_lettered} dead-lettered, {redriven} redriven",
            recorded=ledger.recorded,
            lost=ledger.lost,
            duplicates=ledger.duplicates,
            passed=ledger.exact and dead_lettered == redriven == events,
        )
    )
    assert recorded_during_outage == 0
    assert dead_lettered == redriven == events
    assert ledger.exact, ledger
    assert dead_letter_count(pipeline) == 0
