"""Data model v2 in the recorder: idempotent events, version 1 messages, time budget, index heat."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events.clients import OutOfTimeError, RetryBudget, retry_budget
from audit_events.event import SnsProvenance, build_account_deleted_event, new_account_deleted
from audit_events.items import event_type_shard, to_item
from audit_events.subject import pseudonymous_subject

from .builders import EMAIL, record_for, sqs_event
from .conftest import EVENT_TYPE_INDEX_SHARDS, FakeLambdaContext

NOW = datetime(2025, 3, 14, 9, 26, 53, 412907, tzinfo=UTC)


def _items(audit_table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=audit_table)["Items"]
    return items


def _events(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in items if item["event_key"]["S"] != "idempotency"]


def test_retries_with_one_idempotency_key_are_recorded_once_whatever_their_time(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    pseudonym_secret: bytes,
) -> None:
    payload = {"email": EMAIL, "idempotency_key": "order-42/delete"}
    first, retry, late_retry = (
        build_account_deleted_event(payload, secret=pseudonym_secret, now=NOW + delay)
        for delay in (timedelta(0), timedelta(milliseconds=3), timedelta(days=30))
    )
    assert first.event_key != retry.event_key != late_retry.event_key

    response = recorder.handler(
        sqs_event(record_for(retry), record_for(first), record_for(late_retry)), lambda_context
    )
    again = recorder.handler(sqs_event(record_for(first)), lambda_context)

    assert response == again == {"batchItemFailures": []}
    [recorded] = _events(_items(audit_table))
    assert recorded["event_key"] == {"S": retry.event_key}  # the first to arrive is the record
    assert recorded["idempotent"] == {"BOOL": True}


def test_without_a_key_each_call_is_its_own_event(
    audit_table: str, recorder: ModuleType, lambda_context: LambdaContext, pseudonym_secret: bytes
) -> None:
    events = [
        build_account_deleted_event({"email": EMAIL}, secret=pseudonym_secret, now=NOW)
        for _ in range(2)
    ]

    recorder.handler(sqs_event(*map(record_for, events)), lambda_context)

    assert len(_events(_items(audit_table))) == 2
    assert all(item["event_key"]["S"] != "idempotency" for item in _items(audit_table))


def test_idempotency_marker_holds_no_personal_data(
    audit_table: str, recorder: ModuleType, lambda_context: LambdaContext
) -> None:
    event = build_account_deleted_event(
        {"email": EMAIL, "idempotency_key": "k"}, secret=None, now=NOW
    )

    recorder.handler(sqs_event(record_for(event)), lambda_context)

    [marker] = [item for item in _items(audit_table) if item["event_key"]["S"] == "idempotency"]
    assert marker["subject"] == {"S": f"idempotency#{event.event_id}"}
    assert "john" not in json.dumps(marker)


def test_version_1_message_in_a_pseudonymous_pipeline_is_recorded_without_the_address(
    audit_table: str, recorder: ModuleType, lambda_context: LambdaContext, pseudonym_secret: bytes
) -> None:
    v1 = replace(
        new_account_deleted("John.Doe@Mail.com", now=NOW, event_id=str(uuid.uuid4())),
        schema_version=1,
    )
    assert '"schema_version":1' in v1.to_json() and "subject_type" not in v1.to_json()

    response = recorder.handler(sqs_event(record_for(v1)), lambda_context)

    assert response == {"batchItemFailures": []}
    [item] = _items(audit_table)
    assert item["subject"] == {"S": pseudonymous_subject(EMAIL, pseudonym_secret)}
    assert item["subject_type"] == {"S": "hmac-sha256"}
    assert item["schema_version"] == {"N": "1"}
    assert item["details"] == {"M": {}}
    assert item["event_key"] == {"S": v1.event_key}
    assert "john" not in json.dumps(item).lower()


def test_version_1_message_in_a_clear_pipeline_is_recorded_as_before(
    audit_table: str, recorder: ModuleType, lambda_context: LambdaContext
) -> None:
    v1 = replace(new_account_deleted(EMAIL, now=NOW, event_id=str(uuid.uuid4())), schema_version=1)

    recorder.handler(sqs_event(record_for(v1)), lambda_context)

    [item] = _items(audit_table)
    assert item["subject"] == {"S": EMAIL}
    assert item["details"] == {"M": {"email": {"S": EMAIL}}}


class _AlmostOutOfTime(FakeLambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 400


def test_records_are_handed_back_to_sqs_when_the_invocation_is_almost_over(
    audit_table: str, recorder: ModuleType
) -> None:
    record = record_for(new_account_deleted(EMAIL, now=NOW, event_id=str(uuid.uuid4())))

    response = recorder.handler(sqs_event(record), _AlmostOutOfTime())

    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert _items(audit_table) == []


@pytest.mark.parametrize(
    ("remaining", "expected"),
    [
        (29.5, RetryBudget(1, 2, 3)),  # the recorder's default 30 s
        (9.9, RetryBudget(1, 2, 2)),  # the publisher's 10 s
        (4.0, RetryBudget(1, 2, 1)),
        (2.6, RetryBudget(0.7, 1.6, 1)),
        (0.95, RetryBudget(0.2, 0.4, 1)),  # a 1-second recorder
    ],
)
def test_retries_and_timeouts_end_before_the_function_does(
    remaining: float, expected: RetryBudget
) -> None:
    budget = retry_budget(remaining)

    assert budget == expected
    assert budget.worst_case_seconds() <= remaining


def test_too_little_time_for_one_attempt_is_an_error_not_a_timeout() -> None:
    with pytest.raises(OutOfTimeError):
        retry_budget(0.45)


def test_index_partition_heat_at_10000_events_per_second_of_one_type() -> None:
    """The keys the recorder writes for 10,000 events of one type: no index partition key gets
    1,000 writes/s (DynamoDB's per-partition limit) at 10,000 events/s."""
    provenance = SnsProvenance("m", "arn:aws:sns:eu-west-1:123456789012:t", "t")
    keys = Counter(
        to_item(
            build_account_deleted_event({"email": EMAIL}, secret=b"s", now=NOW),
            provenance,
            recorded_at="r",
            event_type_shards=EVENT_TYPE_INDEX_SHARDS,
        )["event_type_shard"]["S"]
        for _ in range(10_000)
    )

    hottest_share = max(keys.values()) / 10_000
    assert len(keys) == EVENT_TYPE_INDEX_SHARDS
    assert hottest_share * 10_000 < 1_000


def test_shard_is_a_function_of_the_event_id() -> None:
    assert event_type_shard("AccountDeleted", "0000000f-0000-4000-8000-000000000000", 16) == (
        "AccountDeleted#15"
    )
    assert event_type_shard("AccountDeleted", "00000010-0000-4000-8000-000000000000", 16) == (
        "AccountDeleted#0"
    )
