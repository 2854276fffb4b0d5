"""The sealer and redacted records (moto): a redaction of a sealed record is no tampering and its
batch delivered again finds the record sealed; a record redacted before its batch is sealed is
sealed as the recorder wrote it; a stub with another hash is tampering."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events import integrity, redaction
from audit_stack import verify as checks

from .conftest import DIGEST_TABLE, Sealing
from .test_seal_records import _new_sealer, _record, _stored_items, _verify

BREAK_GLASS = "arn:aws:iam::123456789012:role/BreakGlass"


def _redact(sealing: Sealing, item: dict[str, Any]) -> dict[str, Any]:
    stub = redaction.redaction_stub(
        item,
        redacted_at="2026-03-01T10:00:00.000000Z",
        reason="GDPR Art. 17 request 4711",
        redacted_by=BREAK_GLASS,
    )
    # moto enforces no IAM: the put stands for the break-glass role's UpdateItem.
    boto3.client("dynamodb").put_item(TableName=sealing.table, Item=stub)
    return stub


def _sealed_refs() -> list[integrity.RecordRef]:
    items = checks.digest_items(boto3.client("dynamodb"), DIGEST_TABLE, boto3.client("s3"))
    return [ref for item in items for ref in integrity.parse_digest(item["body"]["S"]).records]


def test_a_redaction_of_a_sealed_record_is_no_finding_and_a_repeated_batch_finds_it_sealed(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    batch = sealing.stream.records()
    assert _new_sealer(sealer, sealing).seal_stream(batch).digests == [1]
    (item,) = _stored_items(sealing)
    _redact(sealing, item)

    redacted = _new_sealer(sealer, sealing).seal_stream(sealing.stream.records())
    again = _new_sealer(sealer, sealing).seal_stream(batch)  # the first batch delivered again

    assert (redacted.digests, redacted.sealed, redacted.rejected) == ([], 0, [])
    assert (again.digests, again.sealed, again.duplicates, again.rejected) == ([], 0, 1, [])


def test_a_record_redacted_before_its_batch_is_sealed_is_sealed_as_written_and_verifies(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 2)
    first, _ = _stored_items(sealing)
    _redact(sealing, first)

    report = _new_sealer(sealer, sealing).seal_stream(sealing.stream.records())

    # The INSERT images are the recorder's: both sealed; the stub keeps the sealed hash.
    assert (report.sealed, report.rejected) == (2, [])
    assert _verify(sealing).sealed_records == 2
    sealed = {ref.key: ref.record_hash for ref in _sealed_refs()}
    assert sealed[(first["subject"]["S"], first["event_key"]["S"])] == first["record_hash"]["S"]


def test_a_stub_whose_hash_is_not_the_sealed_one_is_tampering(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    (item,) = _stored_items(sealing)
    stub = _redact(sealing, item) | {"record_hash": {"S": "0" * 64}}
    boto3.client("dynamodb").put_item(TableName=sealing.table, Item=stub)

    report = _new_sealer(sealer, sealing).seal_stream(sealing.stream.records())

    assert report.sealed == 1
    assert [(r["subject"], r["finding"]) for r in report.rejected] == [
        (item["subject"]["S"], "altered after it was written")
    ]
    assert not _verify(sealing).ok
