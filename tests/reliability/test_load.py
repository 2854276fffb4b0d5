"""Load: every published event is recorded exactly once, and nothing is dead-lettered."""

from __future__ import annotations

import pytest

from audit_stack.local import LocalAuditPipeline
from tests.reliability.conftest import SIZES, Row, report
from tests.reliability.helpers import account, dead_letter_count, publish, recorded_event_ids

pytestmark = pytest.mark.e2e


def test_every_published_event_is_recorded_exactly_once_under_load(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline
    emails = [f"load-{index}@reliability.example" for index in range(SIZES.load_events)]

    published = publish(pipeline, emails)
    pipeline.run_until_idle(timeout=600)

    ledger = account(published, recorded_event_ids(pipeline))
    dead_lettered = dead_letter_count(pipeline)
    report(
        Row(
            check="load",
            tried=f"{len(published):,} events",
            what_happened=f"{dead_lettered} in the DLQ",
            recorded=ledger.recorded,
            lost=ledger.lost,
            duplicates=ledger.duplicates,
            passed=ledger.exact and dead_lettered == 0 and len(published) == len(emails),
        )
    )
    assert len(set(published)) == len(emails)
    assert ledger.exact, ledger
    assert dead_lettered == 0
