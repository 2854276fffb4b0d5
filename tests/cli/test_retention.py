"""Retention on the emulator: a pipeline with ``retention``, its records removed as DynamoDB's
TTL removes them (``LocalAuditPipeline.expire_records``), and ``audit verify`` telling a record
expired under the policy from one removed before its time."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from audit_stack.cli import verify as verify_command
from audit_stack.lambda_code import contract
from audit_stack.local import LocalAuditPipeline
from tests.conftest import synthesize_with_props
from tests.e2e.helpers import subject_of

from .conftest import OPERATOR_ENFORCE_IAM, Audit

RETENTION_DAYS = 30


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAuditPipeline]:
    """AuditStack with a 30-day retention, on the emulator, for this module's tests."""
    assembly = synthesize_with_props(
        tmp_path_factory.mktemp("retention.out"),
        f'{{"retention": cdk.Duration.days({RETENTION_DAYS})}}',
    )
    with LocalAuditPipeline(assembly, enforce_iam=OPERATOR_ENFORCE_IAM) as running:
        yield running


def _item(pipeline: LocalAuditPipeline, email: str) -> dict[str, Any]:
    subject = subject_of(pipeline, email)
    items = pipeline.client("dynamodb", as_emulator=True).scan(TableName=pipeline.table_name)
    (item,) = [i for i in items["Items"] if i[contract.PARTITION_KEY]["S"] == subject]
    return dict(item)


def _at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """Run `audit verify` with its clock at ``moment``. The emulator runs no schedule, so no
    heartbeat digest was written in the time skipped: the gap the heartbeat allows is widened
    by it (the silence check itself: tests/unit/lambdas/test_anchoring.py)."""
    monkeypatch.setattr(verify_command, "utc_now", lambda: moment)
    skipped = moment - datetime.now(UTC)
    real = verify_command.anchor_settings
    monkeypatch.setattr(
        verify_command,
        "anchor_settings",
        lambda target: dataclasses.replace(real(target), max_gap=real(target).max_gap + skipped),
    )


def test_verify_calls_an_early_removal_missing_and_ttls_removals_expired_under_the_policy(
    audit: Audit, pipeline: LocalAuditPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    emails = ("alice@example.com", "bob@example.com", "carol@example.com")
    for email in emails:
        assert audit("delete-account", email).exit_code == 0
    pipeline.run_until_idle(timeout=60)
    assert audit("seal").exit_code == 0
    subjects = {email: subject_of(pipeline, email) for email in emails}
    bob = _item(pipeline, "bob@example.com")
    expiry = int(bob[contract.EXPIRES_AT_ATTRIBUTE]["N"])
    recorded = datetime.strptime(bob["recorded_at"]["S"], contract.TIMESTAMP_FORMAT)
    assert expiry == int((recorded.replace(tzinfo=UTC) + timedelta(days=30)).timestamp())

    # Bob's record is deleted today, by someone who lifted the table's policy: not TTL.
    pipeline.client("dynamodb", as_emulator=True).delete_item(
        TableName=pipeline.table_name,
        Key={name: bob[name] for name in (contract.PARTITION_KEY, contract.SORT_KEY)},
    )
    early = audit("verify", "--json")
    assert early.exit_code == 1
    assert early.json()["expired_records"] == 0
    ((kind, subject, detail),) = [
        (f["kind"], f["subject"], f["detail"]) for f in early.json()["findings"]
    ]
    assert (kind, subject) == ("missing", subjects["bob@example.com"])
    assert "before its sealed expires_at" in detail
    assert "FAILED: 1 finding(s)" in audit("verify").stdout

    # Nothing has expired yet, so DynamoDB's TTL deletes nothing today.
    assert pipeline.expire_records() == 0
    # Two days after the expiry, the TTL process has run: alice's and carol's records are gone.
    later = datetime.fromtimestamp(expiry, UTC) + timedelta(days=2)
    assert pipeline.expire_records(now=later) == 2
    assert pipeline.client("dynamodb").scan(TableName=pipeline.table_name)["Items"] == []

    _at(monkeypatch, later)
    after = audit("verify", "--json")
    assert after.exit_code == 0, after.stdout
    assert (after.json()["ok"], after.json()["expired_records"]) == (True, 3)
    assert sorted((f["kind"], f["subject"]) for f in after.json()["findings"]) == sorted(
        ("expired under the policy", subject) for subject in subjects.values()
    )
    # Once its expiry has passed, bob's early removal looks like TTL's: only a check run before
    # then could tell (docs/INTEGRITY.md, Retention).
    text = audit("verify")
    assert text.exit_code == 0
    assert "3 of them sealed; 3 expired under the retention policy." in text.stdout
    assert "3 record(s) expired under the retention policy" in text.stdout
    assert "OK: the chain is intact and every record matches its digest." in text.stdout
    for subject in subjects.values():
        assert subject in text.stdout
