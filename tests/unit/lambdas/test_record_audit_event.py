"""The recorder: SQS batches of SNS notifications into the moto audit table, once per event."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from audit_events import integrity
from audit_events.event import AuditEvent, PoisonMessageError, SnsProvenance

from .builders import (
    EMAIL,
    TOPIC_ARN,
    account_deleted,
    record_for,
    signed_again,
    sns_notification,
    sqs_event,
    sqs_record,
)
from .conftest import CapturedLogs, emitted_metrics

REAL_SQS_EVENT = Path(__file__).parent / "data" / "sqs_event_with_sns_notification.json"
FIRST_WRITE = datetime(2025, 3, 14, 9, 27, 0, 1, tzinfo=UTC)
SECOND_WRITE = datetime(2025, 3, 14, 10, 0, 0, 2, tzinfo=UTC)


def _items(audit_table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=audit_table)["Items"]
    return items


def _item(audit_table: str, event: AuditEvent) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        boto3.client("dynamodb")
        .get_item(
            TableName=audit_table,
            Key={"subject": {"S": event.subject}, "event_key": {"S": event.event_key}},
        )
        .get("Item")
    )
    return item


def _real_sqs_event() -> dict[str, Any]:
    """The SQS event captured from AWS, signed again by the tests' SNS."""
    event: dict[str, Any] = json.loads(REAL_SQS_EVENT.read_text())
    for record in event["Records"]:
        record["body"] = signed_again(record["body"])
    return event


def _failed_ids(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


@pytest.fixture
def clock(recorder: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the time the recorder stamps as recorded_at."""

    def set_time(moment: datetime) -> None:
        monkeypatch.setattr(recorder, "utc_now", lambda: moment)

    set_time(FIRST_WRITE)
    return set_time


def test_real_aws_sqs_event_is_recorded_with_documented_item_shape(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    clock: Callable[[datetime], None],
) -> None:
    event = _real_sqs_event()

    response = recorder.handler(event, lambda_context)

    assert response == {"batchItemFailures": []}
    items = _items(audit_table)
    # The stored hash covers every other attribute (integrity.py's canonical form).
    stated_hash = items[0].pop("record_hash")
    assert stated_hash == {"S": integrity.record_hash(items[0])}
    assert items == [
        {
            "subject": {"S": "john.doe@mail.com"},
            "event_key": {"S": "2025-03-14T09:26:53.412907Z#9f1c2b4e-3d5a-4c8e-9b7f-2a6d1e0c5b3a"},
            # 0x9f1c2b4e mod 16 shards
            "event_type_shard": {"S": "AccountDeleted#14"},
            "subject_type": {"S": "email"},
            "event_type": {"S": "AccountDeleted"},
            "event_id": {"S": "9f1c2b4e-3d5a-4c8e-9b7f-2a6d1e0c5b3a"},
            "occurred_at": {"S": "2025-03-14T09:26:53.412907Z"},
            "schema_version": {"N": "1"},
            "idempotent": {"BOOL": False},
            "source": {"S": "deleteAccount"},
            "details": {"M": {"email": {"S": "john.doe@mail.com"}}},
            "recorded_at": {"S": "2025-03-14T09:27:00.000001Z"},
            "sns_message_id": {"S": "d3b5a6c2-8f1e-5b4a-9c7d-0e2f4a6b8c1d"},
            "topic_arn": {"S": TOPIC_ARN},
        }
    ]


def test_batch_of_events_creates_one_record_each(
    audit_table: str, recorder: ModuleType, lambda_context: LambdaContext
) -> None:
    events = [account_deleted(f"user{number}@mail.com") for number in range(10)]

    response = recorder.handler(sqs_event(*map(record_for, events)), lambda_context)

    assert response == {"batchItemFailures": []}
    assert {item["event_id"]["S"] for item in _items(audit_table)} == {e.event_id for e in events}


def test_duplicate_delivery_in_one_batch_creates_one_record(
    audit_table: str, recorder: ModuleType, lambda_context: LambdaContext
) -> None:
    event = account_deleted()
    body = sns_notification(event.to_json())

    response = recorder.handler(sqs_event(sqs_record(body), sqs_record(body)), lambda_context)

    assert response == {"batchItemFailures": []}
    assert len(_items(audit_table)) == 1


def test_duplicate_delivery_in_a_later_batch_keeps_the_first_record(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    clock: Callable[[datetime], None],
) -> None:
    event = account_deleted()
    body = sns_notification(event.to_json())
    recorder.handler(sqs_event(sqs_record(body)), lambda_context)
    first = _item(audit_table, event)

    clock(SECOND_WRITE)
    response = recorder.handler(sqs_event(sqs_record(body, receive_count=2)), lambda_context)

    assert response == {"batchItemFailures": []}
    assert _item(audit_table, event) == first
    assert first is not None
    assert first["recorded_at"] == {"S": "2025-03-14T09:27:00.000001Z"}


def test_recorded_event_is_never_overwritten_by_a_different_message_with_its_key(
    audit_table: str, recorder: ModuleType, lambda_context: LambdaContext
) -> None:
    event = account_deleted()
    recorder.handler(sqs_event(record_for(event)), lambda_context)
    first = _item(audit_table, event)
    tampered = AuditEvent(**{**_fields(event), "details": {"email": "someone.else@mail.com"}})

    response = recorder.handler(sqs_event(record_for(tampered)), lambda_context)

    assert response == {"batchItemFailures": []}
    assert _item(audit_table, event) == first
    assert len(_items(audit_table)) == 1


def _fields(event: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in AuditEvent.__dataclass_fields__}


POISON_BODIES = {
    "not JSON": "account deleted: john.doe@mail.com",
    "not an SNS envelope": json.dumps({"email": EMAIL}),
    "raw message, no envelope": account_deleted().to_json(),
    "subscription confirmation": sns_notification("{}").replace(
        '"Type" : "Notification"', '"Type" : "SubscriptionConfirmation"'
    ),
    "message not JSON": sns_notification("AccountDeleted john.doe@mail.com"),
    "message of the wrong shape": sns_notification(json.dumps({"email": EMAIL})),
    "unknown schema version": sns_notification(
        account_deleted().to_json().replace('"schema_version":3', '"schema_version":4')
    ),
    "number DynamoDB cannot store": sns_notification(
        account_deleted().to_json().replace('"details":{', '"details":{"n":1e300,')
    ),
}


@pytest.mark.parametrize("body", POISON_BODIES.values(), ids=POISON_BODIES.keys())
def test_poison_message_is_reported_while_good_neighbours_are_recorded(
    audit_table: str, recorder: ModuleType, lambda_context: LambdaContext, body: str
) -> None:
    before, after = account_deleted("before@mail.com"), account_deleted("after@mail.com")
    batch = sqs_event(
        record_for(before),
        sqs_record(body, message_id="poison-message-id"),
        record_for(after),
    )

    response = recorder.handler(batch, lambda_context)

    assert _failed_ids(response) == ["poison-message-id"]
    assert {item["subject"]["S"] for item in _items(audit_table)} == {
        "before@mail.com",
        "after@mail.com",
    }


def test_batch_of_only_poison_messages_reports_every_message(
    audit_table: str, recorder: ModuleType, lambda_context: LambdaContext
) -> None:
    records = [sqs_record(body) for body in POISON_BODIES.values()]

    response = recorder.handler(sqs_event(*records), lambda_context)

    assert _failed_ids(response) == [record["messageId"] for record in records]
    assert _items(audit_table) == []


def _client_error(code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "injected by the test"}}, "BatchExecuteStatement"
    )


def _writes(event_id: str) -> Callable[[dict[str, Any]], bool]:
    """Whether a BatchExecuteStatement entry inserts the event ``event_id``."""
    return lambda statement: {"S": event_id} in statement["Parameters"]


@pytest.fixture
def failing_statement(
    recorder: ModuleType, audit_table: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, str], None]:
    """Make DynamoDB answer the recorder's next INSERT of one event with a statement error
    (``BatchStatementError``), the other statements of its request going through."""

    def fail_next_insert(event_id: str, code: str) -> None:
        # The client the recorder gets with the test context's 29.5 s left.
        client = recorder.client("dynamodb", 29.5)
        batch_execute_statement = client.batch_execute_statement
        pending = [event_id]

        def one_statement_failing(*, Statements: list[dict[str, Any]]) -> Any:
            failing = [
                index
                for index, entry in enumerate(Statements)
                if pending and _writes(event_id)(entry)
            ]
            rest = [entry for index, entry in enumerate(Statements) if index not in failing]
            answers = batch_execute_statement(Statements=rest)["Responses"] if rest else []
            for index in failing:
                pending.clear()
                answers.insert(index, {"Error": {"Code": code, "Message": "injected by the test"}})
            return {"Responses": answers}

        monkeypatch.setattr(client, "batch_execute_statement", one_statement_failing)

    return fail_next_insert


@pytest.fixture
def failing_request(
    recorder: ModuleType, audit_table: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[[Exception], None]:
    """Make the recorder's next BatchExecuteStatement request fail as a whole with ``error``."""

    def fail_next_request(error: Exception) -> None:
        client = recorder.client("dynamodb", 29.5)
        batch_execute_statement = client.batch_execute_statement
        pending = [error]

        def failing_once(**request: Any) -> Any:
            if pending:
                raise pending.pop()
            return batch_execute_statement(**request)

        monkeypatch.setattr(client, "batch_execute_statement", failing_once)

    return fail_next_request


# Every BatchStatementError code but the two that mean "already recorded" (DuplicateItem,
# ConditionalCheckFailed): DynamoDB API reference, BatchStatementError.
STATEMENT_ERRORS = (
    "ItemCollectionSizeLimitExceeded",
    "RequestLimitExceeded",
    "ValidationError",
    "ProvisionedThroughputExceeded",
    "TransactionConflict",
    "ThrottlingError",
    "InternalServerError",
    "ResourceNotFound",
    "AccessDenied",
)


@pytest.mark.parametrize("code", STATEMENT_ERRORS)
def test_a_statement_error_reports_only_its_record_for_redelivery(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    failing_statement: Callable[[str, str], None],
    code: str,
) -> None:
    throttled, neighbour = account_deleted("throttled@mail.com"), account_deleted()
    failing_statement(throttled.event_id, code)

    response = recorder.handler(
        sqs_event(record_for(throttled, message_id="throttled-id"), record_for(neighbour)),
        lambda_context,
    )

    assert _failed_ids(response) == ["throttled-id"]
    assert _item(audit_table, throttled) is None
    assert _item(audit_table, neighbour) is not None


@pytest.mark.parametrize(
    "error",
    [
        *map(
            _client_error,
            [
                "ProvisionedThroughputExceededException",
                "ThrottlingException",
                "RequestLimitExceeded",
                "InternalServerError",
                "AccessDeniedException",
                "ResourceNotFoundException",
            ],
        ),
        ReadTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/"),
        EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/"),
    ],
    ids=lambda error: (
        error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__
    ),
)
def test_a_failed_request_reports_each_of_its_records_for_redelivery(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    failing_request: Callable[[Exception], None],
    error: Exception,
) -> None:
    first, second = account_deleted("first@mail.com"), account_deleted("second@mail.com")
    failing_request(error)

    response = recorder.handler(
        sqs_event(
            record_for(first, message_id="first-id"),
            sqs_record("not json", message_id="poison-id"),
            record_for(second, message_id="second-id"),
        ),
        lambda_context,
    )

    # Nothing DynamoDB may have stored is counted as recorded; the poison is poison regardless.
    assert _failed_ids(response) == ["first-id", "poison-id", "second-id"]
    assert _items(audit_table) == []


def test_throttled_record_is_recorded_once_when_sqs_redelivers_it(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    failing_statement: Callable[[str, str], None],
) -> None:
    event = account_deleted()
    body = sns_notification(event.to_json())
    failing_statement(event.event_id, "ThrottlingError")
    throttled = recorder.handler(sqs_event(sqs_record(body, message_id="m-1")), lambda_context)

    redelivered = recorder.handler(
        sqs_event(sqs_record(body, message_id="m-1", receive_count=2)), lambda_context
    )

    assert _failed_ids(throttled) == ["m-1"]
    assert redelivered == {"batchItemFailures": []}
    assert len(_items(audit_table)) == 1


def test_a_request_answered_after_its_writes_is_recorded_once_when_sqs_redelivers_it(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The answer is lost after DynamoDB stored the items: the redelivery finds them
    (DuplicateItem) and counts each once, as a duplicate."""
    events = [account_deleted(f"user{number}@mail.com") for number in range(3)]
    client = recorder.client("dynamodb", 29.5)
    batch_execute_statement = client.batch_execute_statement
    lost = [ReadTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/")]

    def stored_then_lost(**request: Any) -> Any:
        answer = batch_execute_statement(**request)
        if lost:
            raise lost.pop()
        return answer

    monkeypatch.setattr(client, "batch_execute_statement", stored_then_lost)
    records = [record_for(event, message_id=f"m-{number}") for number, event in enumerate(events)]

    first = recorder.handler(sqs_event(*records), lambda_context)
    redelivered = recorder.handler(sqs_event(*records), lambda_context)

    assert _failed_ids(first) == ["m-0", "m-1", "m-2"]
    assert redelivered == {"batchItemFailures": []}
    assert len(_items(audit_table)) == 3


def test_metrics_count_recorded_duplicate_and_poison_messages(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = account_deleted("first@mail.com"), account_deleted("second@mail.com")
    capsys.readouterr()

    recorder.handler(
        sqs_event(
            record_for(first),
            record_for(first),
            record_for(second),
            # Signed by SNS but not an audit event: poison only.
            sqs_record(sns_notification('{"schema_version": 3}')),
            # Not even a notification, so SNS never signed it: poison and unverified.
            sqs_record("not json"),
        ),
        lambda_context,
    )

    assert emitted_metrics(capsys.readouterr().out) == {
        "AuditEventsRecorded": 2,
        "DuplicateAuditEventsSkipped": 1,
        "PoisonMessages": 2,
        "UnverifiedMessages": 1,
    }


def test_metrics_are_emitted_as_zero_when_nothing_of_the_kind_happened(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()

    recorder.handler(sqs_event(record_for(account_deleted())), lambda_context)

    assert emitted_metrics(capsys.readouterr().out) == {
        "AuditEventsRecorded": 1,
        "DuplicateAuditEventsSkipped": 0,
        "PoisonMessages": 0,
        "UnverifiedMessages": 0,
    }


def test_recorder_never_logs_subject_or_details(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    captured_logs: CapturedLogs,
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = _real_sqs_event()
    poison = sqs_record(sns_notification('{"subject": "john.doe@mail.com"}'))
    event["Records"] += [event["Records"][0], poison]

    recorder.handler(event, lambda_context)

    entries = captured_logs.entries()
    # The log is there and useful: one line per batch, and one per poison message naming it.
    assert [entry["message"] for entry in entries] == ["Poison message", "Batch processed"]
    assert any(entry.get("sqs_message_id") == poison["messageId"] for entry in entries)
    printed = capsys.readouterr()
    for output in (captured_logs.text, printed.out, printed.err):
        assert "john.doe" not in output


def test_a_batch_recorded_in_full_writes_its_metric_line_and_no_log_line(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    captured_logs: CapturedLogs,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """CloudWatch Logs bills every byte: the counts of a clean batch are in the metric line."""
    events = [account_deleted(f"user{number}@mail.com") for number in range(3)]

    recorder.handler(sqs_event(*map(record_for, events)), lambda_context)

    # At the deployed level (INFO) nothing; the summary is there at DEBUG.
    entries = captured_logs.entries()
    assert [entry["message"] for entry in entries if entry["level"] != "DEBUG"] == []
    assert [entry["message"] for entry in entries] == ["Batch processed"]
    assert emitted_metrics(capsys.readouterr().out)["AuditEventsRecorded"] == 3


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_missing_table_name_fails_the_invocation_not_the_messages(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TABLE_NAME")

    with pytest.raises(KeyError, match="TABLE_NAME"):
        recorder.handler(sqs_event(record_for(account_deleted())), lambda_context)


# --- what DynamoDB cannot store is poison, found before writing ------------------------------

PROVENANCE = SnsProvenance("d3b5a6c2-8f1e-5b4a-9c7d-0e2f4a6b8c1d", "arn:aws:sns:...", "...")


def _with_details(details: dict[str, Any], subject: str = EMAIL) -> AuditEvent:
    return AuditEvent(**{**_fields(account_deleted()), "details": details, "subject": subject})


def test_details_become_a_typed_map(recorder: ModuleType) -> None:
    details = {"s": "", "i": -7, "f": 0.1, "b": False, "n": None, "l": [1, "x"], "m": {"k": {}}}

    item = recorder.to_item(_with_details(details), PROVENANCE, recorded_at="now")

    assert item["details"] == {
        "M": {
            "s": {"S": ""},
            "i": {"N": "-7"},
            "f": {"N": "0.1"},
            "b": {"BOOL": False},
            "n": {"NULL": True},
            "l": {"L": [{"N": "1"}, {"S": "x"}]},
            "m": {"M": {"k": {"M": {}}}},
        }
    }


@pytest.mark.parametrize(
    ("event", "error"),
    [
        pytest.param(
            _with_details({"n": 10**38 + 1}),
            "details: numbers must fit DynamoDB's number range",
            id="39 significant digits",
        ),
        pytest.param(
            _with_details({"n": 1e126}),
            "details: numbers must fit DynamoDB's number range",
            id="too large",
        ),
        pytest.param(
            _with_details({"n": 1e-131}),
            "details: numbers must fit DynamoDB's number range",
            id="too small",
        ),
        pytest.param(
            _with_details({"n": float("inf")}), "details: numbers must be finite", id="infinite"
        ),
        pytest.param(
            _with_details(json.loads('{"a":' * 33 + "1" + "}" * 33)),
            "details: must be nested at most 32 levels",
            id="too deep",
        ),
        pytest.param(
            _with_details({"text": "\ud800"}),
            "details: must be valid Unicode text",
            id="lone surrogate",
        ),
        pytest.param(
            _with_details({}, subject="\ud800@mail.com"),
            "subject: must be valid Unicode text",
            id="lone surrogate in subject",
        ),
        pytest.param(
            _with_details({}, subject="\U0001f600" * 513),
            "subject: must be at most 2048 bytes",
            id="subject beyond partition key size",
        ),
    ],
)
def test_event_dynamodb_cannot_store_is_poison(
    recorder: ModuleType, event: AuditEvent, error: str
) -> None:
    with pytest.raises(PoisonMessageError) as raised:
        recorder.to_item(event, PROVENANCE, recorded_at="now")

    assert str(raised.value) == error


def test_values_at_dynamodb_limits_are_stored(
    audit_table: str, recorder: ModuleType, lambda_context: LambdaContext
) -> None:
    details = {
        "big": 10**38 - 1,
        "large": 9.999e125,
        "tiny": -1e-130,
        "round": 10**100,
        "deep": json.loads('{"a":' * 31 + "1" + "}" * 31),
    }
    event = _with_details(details, subject="\U0001f600" * 512)

    response = recorder.handler(sqs_event(record_for(event)), lambda_context)

    assert response == {"batchItemFailures": []}
    stored = _item(audit_table, event)
    assert stored is not None
    assert stored["details"]["M"]["big"] == {"N": str(10**38 - 1)}
