"""The sealer and redacted records (moto): a notice that comes again after its record was
redacted finds it sealed; a stub of a record never sealed is rejected as tampering."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events import redaction

from .conftest import Sealing
from .test_seal_records import _new_sealer, _record, _send_notice, _stored_items

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


def test_a_notice_repeated_after_a_redaction_finds_the_record_sealed_not_tampered(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    assert _new_sealer(sealer, sealing).run().digests == [1]
    (item,) = _stored_items(sealing)
    _redact(sealing, item)
    _send_notice(sealing, item, item["recorded_at"]["S"])

    rerun = _new_sealer(sealer, sealing).run()

    assert (rerun.digests, rerun.sealed, rerun.duplicates, rerun.rejected) == ([], 0, 1, [])


def test_a_stub_of_a_record_never_sealed_is_rejected_as_tampering(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 2)
    first, _ = _stored_items(sealing)
    _redact(sealing, first)

    report = _new_sealer(sealer, sealing).run()

    assert report.sealed == 1
    assert [(r["subject"], r["finding"]) for r in report.rejected] == [
        (first["subject"]["S"], "redacted before it was sealed")
    ]
