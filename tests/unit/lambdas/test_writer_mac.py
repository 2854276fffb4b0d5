"""The writer key (moto): the recorder MACs every item it writes, and the sealer seals only items
that carry that MAC, so an item put by anyone else is reported, not sealed."""

from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events import contract, integrity
from audit_events.event import new_account_deleted
from audit_events.subject import idempotent_event_id

from .builders import account_deleted, record_for, sqs_event
from .conftest import Sealing, emitted_metrics

WRITER_KEY = "writer-key-for-tests"


@pytest.fixture
def writer_key(aws: None, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The writer key in Secrets Manager, named to both functions as the stack does."""
    arn = boto3.client("secretsmanager").create_secret(
        Name="audit-writer-key", SecretString=WRITER_KEY
    )["ARN"]
    monkeypatch.setenv(contract.ENV_WRITER_KEY_SECRET_ARN, arn)
    return WRITER_KEY.encode()


def _items(sealing: Sealing) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=sealing.table)["Items"]
    return items


def _copy_under_another_key(item: dict[str, Any], suffix: str) -> dict[str, Any]:
    """``item``'s content under another sort key, with a correct record_hash and no MAC."""
    return integrity.with_record_hash(
        {
            key: value
            for key, value in item.items()
            if key not in (contract.RECORD_HASH_ATTRIBUTE, contract.WRITER_MAC_ATTRIBUTE)
        }
        | {contract.SORT_KEY: {"S": item[contract.SORT_KEY]["S"] + suffix}}
    )


def test_the_writer_mac_matches_a_known_answer_computed_by_openssl() -> None:
    # printf 'audit-pipeline writer v1\0%s' "$(printf 'a%.0s' {1..64})" |
    #   openssl dgst -sha256 -hmac writer-key-for-tests
    assert integrity.writer_mac(WRITER_KEY.encode(), "a" * 64) == (
        "29655a5a1f0366689d09f6f4afaeb0e2c9181a94eda006d1cc4d8177c381957d"
    )


def test_the_writer_mac_is_outside_the_records_canonical_content() -> None:
    item = {"subject": {"S": "s"}, "event_key": {"S": "k"}}
    hashed = integrity.with_record_hash(item)
    marked = {**hashed, contract.WRITER_MAC_ATTRIBUTE: {"S": "00"}}
    assert integrity.record_hash(marked) == hashed[contract.RECORD_HASH_ATTRIBUTE]["S"]


def test_the_recorder_macs_every_item_it_writes_markers_included(
    sealing: Sealing,
    writer_key: bytes,
    recorder: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    plain = account_deleted("one@example.com")
    idempotent = new_account_deleted(
        "two@example.com",
        now=datetime(2025, 3, 14, 9, 26, 0, tzinfo=UTC),
        event_id=idempotent_event_id("two@example.com", "order-4711", None),
        idempotent=True,
    )
    response = recorder.handler(
        sqs_event(record_for(plain), record_for(idempotent)), lambda_context
    )

    assert response == {"batchItemFailures": []}
    items = _items(sealing)
    assert len(items) == 3  # two records and one idempotency marker
    assert all(integrity.has_writer_mac(item, writer_key) for item in items)
    assert not any(integrity.has_writer_mac(item, b"another key") for item in items)


def test_the_sealer_seals_the_recorders_items_and_reports_an_item_put_by_anyone_else(
    sealing: Sealing,
    writer_key: bytes,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recorder.handler(sqs_event(record_for(account_deleted())), lambda_context)
    (genuine,) = _items(sealing)
    # A well-formed record with a correct record_hash, put by a principal that lifted the
    # table's policy (moto enforces no IAM): without the key it cannot MAC it.
    forged = _copy_under_another_key(genuine, "-forged")
    boto3.client("dynamodb").put_item(TableName=sealing.table, Item=forged)
    capsys.readouterr()

    result = sealing.seal(sealer, lambda_context)

    assert result[contract.SEAL_RECORDS_SEALED] == 1
    assert [(r["event_key"], r["finding"]) for r in result[contract.SEAL_REJECTED]] == [
        (forged[contract.SORT_KEY]["S"], "not written by the recorder (no valid writer MAC)")
    ]
    assert emitted_metrics(capsys.readouterr().out)["TamperedAuditRecords"] == 1


def test_an_item_with_another_items_mac_is_not_sealed(
    sealing: Sealing,
    writer_key: bytes,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    recorder.handler(sqs_event(record_for(account_deleted())), lambda_context)
    (genuine,) = _items(sealing)
    forged = _copy_under_another_key(genuine, "-copied") | {
        contract.WRITER_MAC_ATTRIBUTE: genuine[contract.WRITER_MAC_ATTRIBUTE]
    }
    boto3.client("dynamodb").put_item(TableName=sealing.table, Item=forged)

    result = sealing.seal(sealer, lambda_context)

    assert result[contract.SEAL_RECORDS_SEALED] == 1
    assert [r["finding"] for r in result[contract.SEAL_REJECTED]] == [
        "not written by the recorder (no valid writer MAC)"
    ]
