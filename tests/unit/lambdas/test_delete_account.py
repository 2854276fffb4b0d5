"""The deleteAccount publisher against moto's SNS and SQS."""

from __future__ import annotations

import json
import re
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events.event import InvalidPayloadError, parse_audit_event
from audit_events.subject import pseudonymous_subject

from .builders import EMAIL
from .conftest import CapturedLogs, MockTopic

ORIGINAL_PAYLOAD = {"email": EMAIL}


@pytest.fixture(autouse=True)
def _secret(pseudonym_secret: bytes) -> None:
    """Every test runs with the stack's pseudonym secret, as the default stack deploys it."""


def _queued_messages(topic: MockTopic) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (
        boto3.client("sqs")
        .receive_message(QueueUrl=topic.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        .get("Messages", [])
    )
    return messages


def test_original_payload_publishes_one_event_naming_the_account_by_pseudonym_only(
    topic: MockTopic, publisher: ModuleType, lambda_context: LambdaContext, pseudonym_secret: bytes
) -> None:
    result = publisher.handler(ORIGINAL_PAYLOAD, lambda_context)

    [message] = _queued_messages(topic)
    assert "john.doe" not in message["Body"]
    event = parse_audit_event(json.loads(message["Body"])["Message"])
    assert event.schema_version == 3
    assert event.subject == pseudonymous_subject(EMAIL, pseudonym_secret)
    assert event.subject_type == "hmac-sha256"
    assert event.details == {}
    assert event.idempotent is False
    assert result["event_id"] == event.event_id


def test_subject_in_clear_publishes_the_address_as_before(
    topic: MockTopic,
    publisher: ModuleType,
    lambda_context: LambdaContext,
    subject_in_clear: None,
) -> None:
    result = publisher.handler(ORIGINAL_PAYLOAD, lambda_context)

    [message] = _queued_messages(topic)
    envelope = json.loads(message["Body"])
    assert envelope["Type"] == "Notification"
    assert envelope["TopicArn"] == topic.topic_arn
    assert envelope["MessageAttributes"] == {
        "event_type": {"Type": "String", "Value": "AccountDeleted"}
    }
    event = parse_audit_event(envelope["Message"])
    assert event.event_type == "AccountDeleted"
    assert event.subject == EMAIL
    assert event.details == {"email": EMAIL}
    assert event.subject_type == "email"
    assert event.source == "deleteAccount"
    assert result == {
        "event_id": event.event_id,
        "event_type": "AccountDeleted",
        "occurred_at": event.occurred_at,
    }


def test_each_invocation_publishes_a_new_event_id(
    topic: MockTopic, publisher: ModuleType, lambda_context: LambdaContext
) -> None:
    first = publisher.handler(ORIGINAL_PAYLOAD, lambda_context)
    second = publisher.handler(ORIGINAL_PAYLOAD, lambda_context)

    assert first["event_id"] != second["event_id"]
    assert len(_queued_messages(topic)) == 2


def test_retries_with_one_idempotency_key_publish_one_event_id(
    topic: MockTopic, publisher: ModuleType, lambda_context: LambdaContext
) -> None:
    payload = {"email": EMAIL, "idempotency_key": "req-7f3a"}
    first = publisher.handler(payload, lambda_context)
    retry = publisher.handler({**payload, "email": EMAIL.upper()}, lambda_context)
    other_key = publisher.handler({**payload, "idempotency_key": "req-7f3b"}, lambda_context)

    assert first["event_id"] == retry["event_id"] != other_key["event_id"]
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first["event_id"]
    )
    events = [parse_audit_event(json.loads(m["Body"])["Message"]) for m in _queued_messages(topic)]
    assert all(event.idempotent for event in events)


def test_response_carries_ids_and_time_but_no_email(
    topic: MockTopic, publisher: ModuleType, lambda_context: LambdaContext
) -> None:
    result = publisher.handler({"email": "Jane.Roe@Example.com"}, lambda_context)

    assert set(result) == {"event_id", "event_type", "occurred_at"}
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", result["event_id"]
    )
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", result["occurred_at"])
    assert "jane" not in json.dumps(result).lower()


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({}, 'payload: missing required field "email"'),
        ([], "payload: must be a JSON object"),
        ({"email": EMAIL, "reason": "gdpr"}, 'payload: unexpected field(s) "reason"'),
        (
            {"mail": EMAIL},
            'payload: missing required field "email"; unexpected field(s) "mail"',
        ),
        ({"email": 7}, "email: must be a string"),
        ({"email": "x" * 255}, "email: must be at most 254 bytes in UTF-8"),
        (
            {"email": EMAIL, "idempotency_key": ""},
            "idempotency_key: must be a string of 1 to 128 printable ASCII characters",
        ),
        ({"email": f" {EMAIL}"}, "email: must not contain whitespace or control characters"),
        ({"email": "john.doe@mail"}, "email: must be a valid email address"),
    ],
)
def test_invalid_payload_raises_and_publishes_nothing(
    topic: MockTopic,
    publisher: ModuleType,
    lambda_context: LambdaContext,
    payload: object,
    error: str,
) -> None:
    with pytest.raises(InvalidPayloadError) as raised:
        publisher.handler(payload, lambda_context)

    assert str(raised.value) == error
    assert _queued_messages(topic) == []


def test_publisher_never_logs_the_email(
    topic: MockTopic,
    publisher: ModuleType,
    lambda_context: LambdaContext,
    captured_logs: CapturedLogs,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = publisher.handler(ORIGINAL_PAYLOAD, lambda_context)

    entries = captured_logs.entries()
    # The log is there and useful: it names the event.
    assert any(entry.get("event_id") == result["event_id"] for entry in entries)
    assert all(entry["function_request_id"] == lambda_context.aws_request_id for entry in entries)
    printed = capsys.readouterr()
    for output in (captured_logs.text, printed.out, printed.err):
        assert "john.doe" not in output


def test_rejected_payload_is_logged_by_rule_not_by_value(
    topic: MockTopic,
    publisher: ModuleType,
    lambda_context: LambdaContext,
    captured_logs: CapturedLogs,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(InvalidPayloadError):
        publisher.handler({"email": "john.doe@mail"}, lambda_context)

    [warning] = [entry for entry in captured_logs.entries() if entry["level"] == "WARNING"]
    assert warning["reason"] == "email: must be a valid email address"
    printed = capsys.readouterr()
    for output in (captured_logs.text, printed.out, printed.err):
        assert "john.doe" not in output
