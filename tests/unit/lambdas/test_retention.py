"""Retention in the recorder and the sealer, on moto: ``expires_at`` on every record and marker,
inside the record hash, signed into the digest; what verify makes of a record TTL removed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events import contract, integrity
from audit_events.event import new_account_deleted
from audit_events.subject import idempotent_event_id
from audit_stack import verify as checks

from .builders import account_deleted, record_for, sqs_event
from .conftest import Sealing
from .test_seal_records import TTL_IDENTITY

RECORDED = datetime(2025, 3, 14, 9, 27, 0, 1, tzinfo=UTC)
# 2025-04-13T09:27:00Z: 30 days after RECORDED, in whole epoch seconds (computed by hand).
EXPIRES_30_DAYS_LATER = 1_744_536_420


@pytest.fixture
def recorded_at(recorder: ModuleType, monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(recorder, "utc_now", lambda: RECORDED)
    return RECORDED


def _items(table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return items


def _idempotent_event() -> Any:
    email = "idem@example.com"
    return new_account_deleted(
        email,
        now=datetime(2025, 3, 14, 9, 26, 0, tzinfo=UTC),
        event_id=idempotent_event_id(email, "retry-key-1", None),
        idempotent=True,
    )


def test_with_retention_days_every_record_and_marker_expires_that_long_after_it_was_recorded(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    recorded_at: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(contract.ENV_RETENTION_DAYS, "30")
    events = [account_deleted("plain@example.com"), _idempotent_event()]

    response = recorder.handler(sqs_event(*map(record_for, events)), lambda_context)

    assert response == {"batchItemFailures": []}
    items = _items(audit_table)
    markers = [i for i in items if i["subject"]["S"].startswith(contract.IDEMPOTENCY_MARKER_PREFIX)]
    assert (len(items), len(markers)) == (3, 1)  # two records and the idempotent one's marker
    assert [item[contract.EXPIRES_AT_ATTRIBUTE] for item in items] == [
        {"N": str(EXPIRES_30_DAYS_LATER)}
    ] * 3
    # Inside the hash, like every attribute: a changed life is a changed record.
    for item in items:
        assert item[contract.RECORD_HASH_ATTRIBUTE]["S"] == integrity.record_hash(item)
        longer = {**item, contract.EXPIRES_AT_ATTRIBUTE: {"N": str(EXPIRES_30_DAYS_LATER + 1)}}
        assert integrity.record_hash(longer) != item[contract.RECORD_HASH_ATTRIBUTE]["S"]


def test_without_retention_days_records_have_no_expires_at(
    audit_table: str, recorder: ModuleType, lambda_context: LambdaContext, recorded_at: datetime
) -> None:
    recorder.handler(sqs_event(record_for(account_deleted())), lambda_context)
    (item,) = _items(audit_table)
    assert contract.EXPIRES_AT_ATTRIBUTE not in item


def test_the_expiry_counts_from_the_recorders_clock_not_the_events_claimed_time(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    recorded_at: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An event that claims to be ten years old is still kept its full retention period.
    monkeypatch.setenv(contract.ENV_RETENTION_DAYS, "30")
    old = new_account_deleted(
        "old@example.com",
        now=datetime(2015, 1, 1, tzinfo=UTC),
        event_id="0b6f7f2e-5a4c-4d3b-9e8f-1a2b3c4d5e6f",
    )
    recorder.handler(sqs_event(record_for(old)), lambda_context)
    (item,) = _items(audit_table)
    assert item[contract.EXPIRES_AT_ATTRIBUTE] == {"N": str(EXPIRES_30_DAYS_LATER)}


def _sealer(sealer: ModuleType, sealing: Sealing) -> Any:
    return sealer.Sealer(
        table=sealing.table,
        digest_table=sealing.digest_table,
        signing_key=sealing.key_arn,
        heartbeat=timedelta(hours=1),
        seconds_left=lambda: 40.0,
        now=lambda: RECORDED + timedelta(minutes=5),
    )


def _seal(sealer: ModuleType, sealing: Sealing) -> None:
    """The stream's records since the last seal, sealed as the event source delivers them."""
    _sealer(sealer, sealing).seal_stream(sealing.stream.records())


def _digest_items(sealing: Sealing) -> list[dict[str, Any]]:
    return checks.digest_items(boto3.client("dynamodb"), sealing.digest_table, boto3.client("s3"))


def _verify(sealing: Sealing, now: datetime) -> checks.VerifyReport:
    dynamodb = boto3.client("dynamodb")
    return checks.verify_log(
        checks.scan_records(dynamodb, sealing.table),
        checks.digest_items(dynamodb, sealing.digest_table, boto3.client("s3")),
        checks.kms_public_key(boto3.client("kms"), sealing.key_arn),
        now=now,
    )


def test_the_sealer_signs_each_records_stored_expiry_and_verify_tells_expired_from_removed(
    sealing: Sealing,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
    recorded_at: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(contract.ENV_RETENTION_DAYS, "30")
    recorder.handler(
        sqs_event(record_for(account_deleted("a@example.com")), record_for(_idempotent_event())),
        lambda_context,
    )
    _seal(sealer, sealing)
    (digest_item,) = _digest_items(sealing)
    digest = integrity.parse_digest(digest_item["body"]["S"])
    assert digest.version == integrity.DIGEST_VERSION == 3
    assert [ref.expires_at for ref in digest.records] == [EXPIRES_30_DAYS_LATER] * 3

    # DynamoDB's TTL removes every item once they expired: its stream records name the
    # service (moto's do not, so the test adds the identity DynamoDB gives them).
    dynamodb = boto3.client("dynamodb")
    for item in _items(sealing.table):
        key = {name: item[name] for name in (contract.PARTITION_KEY, contract.SORT_KEY)}
        dynamodb.delete_item(TableName=sealing.table, Key=key)
    removals = sealing.stream.records()
    assert [r["eventName"] for r in removals] == ["REMOVE"] * 3
    by_ttl = [r | {"userIdentity": TTL_IDENTITY} for r in removals]
    expired = _sealer(sealer, sealing).seal_stream(by_ttl)
    assert (expired.digests, expired.rejected) == ([], [])  # no tampering
    expiry = datetime.fromtimestamp(EXPIRES_30_DAYS_LATER, UTC)

    after = _verify(sealing, now=expiry + timedelta(days=2))
    assert after.ok
    assert [f.kind for f in after.findings] == [checks.EXPIRED] * 3
    assert after.to_dict()["expired_records"] == 3
    assert all("2025-04-13T09:27:00Z" in f.detail for f in after.findings)

    # The same removals, seen before the sealed expiry, are records missing: a failure.
    before = _verify(sealing, now=expiry - timedelta(days=1))
    assert not before.ok
    assert [f.kind for f in before.findings] == [checks.MISSING] * 3
    assert before.to_dict()["expired_records"] == 0


def _version_2_digest(**fields: Any) -> Any:
    return integrity.Digest(**{**fields, "version": 2})


def test_a_version_2_chain_goes_on_in_version_3_and_verifies_whole(
    sealing: Sealing,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
    recorded_at: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder.handler(sqs_event(record_for(account_deleted("before@example.com"))), lambda_context)
    with monkeypatch.context() as patch:
        patch.setattr(sealer, "Digest", _version_2_digest)  # the sealer before retention
        _seal(sealer, sealing)
    monkeypatch.setenv(contract.ENV_RETENTION_DAYS, "30")
    recorder.handler(sqs_event(record_for(account_deleted("after@example.com"))), lambda_context)
    _seal(sealer, sealing)

    items = _digest_items(sealing)
    digests = [integrity.parse_digest(item["body"]["S"]) for item in items]
    assert [digest.version for digest in digests] == [2, 3]
    assert [digest.tree_size for digest in digests] == [1, 2]
    assert [ref.expires_at for ref in digests[1].records] == [EXPIRES_30_DAYS_LATER]
    assert _verify(sealing, now=RECORDED + timedelta(days=1)).ok
