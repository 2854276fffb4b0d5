"""A clear producer's idempotent event id (an unkeyed SHA-256 of address and key) is recorded
re-keyed under the pseudonym secret by a pipeline that has it, so reading the table and guessing
an address and a key confirms nothing; retries still dedupe, including those of events recorded
under the producer's own id before the re-keying."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import ModuleType

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events.contract import IDEMPOTENCY_MARKER_PREFIX
from audit_events.event import build_account_deleted_event
from audit_events.items import to_idempotency_marker
from audit_events.subject import rekeyed_event_id

from .builders import record_for, sqs_event

PAYLOAD = {"email": "Clear.Producer@mail.example", "idempotency_key": "req-7"}
NOW = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


def _items(table: str) -> list[dict[str, dict[str, str]]]:
    return list(boto3.client("dynamodb").scan(TableName=table)["Items"])


def test_a_clear_producers_idempotent_event_is_recorded_under_a_keyed_id_once(
    audit_table: str,
    pseudonym_secret: bytes,
    recorder: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    published = build_account_deleted_event(PAYLOAD, secret=None, now=NOW)
    retried = build_account_deleted_event(PAYLOAD, secret=None, now=NOW + timedelta(seconds=3))
    assert published.event_id == retried.event_id  # the producer's unkeyed id

    first = recorder.handler(sqs_event(record_for(published)), lambda_context)
    second = recorder.handler(sqs_event(record_for(retried, message_id="m-2")), lambda_context)

    assert first == second == {"batchItemFailures": []}
    keyed = rekeyed_event_id(published.event_id, pseudonym_secret)
    ids = sorted(item["event_id"]["S"] for item in _items(audit_table))
    assert ids == [keyed, keyed]  # the event and its marker, once
    assert published.event_id not in str(_items(audit_table))
    markers = [i for i in _items(audit_table) if i["subject"]["S"].startswith("idempotency#")]
    assert [marker["subject"]["S"] for marker in markers] == [IDEMPOTENCY_MARKER_PREFIX + keyed]


def test_a_retry_of_an_event_recorded_under_the_producers_own_id_is_still_a_duplicate(
    audit_table: str,
    pseudonym_secret: bytes,
    recorder: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    published = build_account_deleted_event(PAYLOAD, secret=None, now=NOW)
    # Recorded before ids were re-keyed: its marker holds the producer's id.
    legacy_marker = to_idempotency_marker(published, recorded_at="2026-05-06T07:08:09.500000Z")
    boto3.client("dynamodb").put_item(TableName=audit_table, Item=legacy_marker)
    retried = build_account_deleted_event(PAYLOAD, secret=None, now=NOW + timedelta(days=1))

    response = recorder.handler(sqs_event(record_for(retried)), lambda_context)

    assert response == {"batchItemFailures": []}
    assert _items(audit_table) == [legacy_marker]  # nothing new: a duplicate
