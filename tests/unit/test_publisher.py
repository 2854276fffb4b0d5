"""AuditPublisher without AWS: the publisher function's validation and envelope, PublishBatch's
chunks of 10, per-entry retries and failures that are reported, never dropped."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from audit_stack.lambda_code import audit_events_module
from audit_stack.publisher import AuditPublisher, InvalidPayloadError, PublishBatchError

TOPIC = "arn:aws:sns:eu-west-1:123456789012:AuditTopic"


class FakeSns:
    """Records requests; ``failures`` decides, per call, which entry ids fail and how."""

    def __init__(self, failures: Callable[[int, str], dict[str, Any] | None] | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.published: list[dict[str, Any]] = []
        self._failures = failures or (lambda call, entry_id: None)

    def publish(self, **request: Any) -> dict[str, Any]:
        self.published.append(request)
        return {"MessageId": f"m-{len(self.published)}"}

    def publish_batch(self, TopicArn: str, PublishBatchRequestEntries: list[dict[str, Any]]) -> Any:
        assert TopicArn == TOPIC
        call = len(self.calls)
        self.calls.append(PublishBatchRequestEntries)
        successful, failed = [], []
        for entry in PublishBatchRequestEntries:
            failure = self._failures(call, entry["Id"])
            if failure is None:
                successful.append({"Id": entry["Id"], "MessageId": f"m-{call}-{entry['Id']}"})
                self.published.append(entry)
            else:
                failed.append({"Id": entry["Id"], **failure})
        return {"Successful": successful, "Failed": failed}


def _publisher(sns: FakeSns, **options: Any) -> AuditPublisher:
    return AuditPublisher(TOPIC, sns_client=sns, sleep=lambda seconds: None, **options)


def test_one_event_has_the_publisher_functions_envelope() -> None:
    sns = FakeSns()
    published = _publisher(sns).account_deleted("John.Doe@mail.com")
    (request,) = sns.published
    event = json.loads(request["Message"])
    assert event["event_type"] == "AccountDeleted" and event["source"] == "deleteAccount"
    assert event["subject"] == "john.doe@mail.com"
    assert event["details"] == {"email": "John.Doe@mail.com"}
    assert request["MessageAttributes"] == {
        "event_type": {"DataType": "String", "StringValue": "AccountDeleted"}
    }
    assert (published.event_id, published.sns_message_id) == (event["event_id"], "m-1")
    # Byte for byte what the function's own builder makes of the same payload, id and time.
    occurred_at = datetime.strptime(event["occurred_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expected = audit_events_module("publication").account_deleted_publication(
        {"email": "John.Doe@mail.com"},
        now=occurred_at.replace(tzinfo=UTC),
        event_id=event["event_id"],
    )
    assert request["Message"] == expected.message


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("not-an-address", "email: must be a valid email address"),
        ("x" * 250 + "@mail.com", "email: must be at most 254 characters"),
        (" john@mail.com", "email: must not contain whitespace"),
    ],
)
def test_invalid_input_is_refused_like_the_function_does_and_nothing_is_sent(
    email: str, message: str
) -> None:
    sns = FakeSns()
    with pytest.raises(InvalidPayloadError, match=message):
        _publisher(sns).account_deleted(email)
    assert sns.published == []


def test_the_idempotency_key_reaches_the_functions_validation_as_the_function_gets_it() -> None:
    # Accepted exactly when the publisher function accepts {"email", "idempotency_key"}.
    validation = audit_events_module("event").validate_delete_account_payload
    payload = {"email": "john.doe@mail.com", "idempotency_key": "request-1"}
    try:
        validation(payload)
    except InvalidPayloadError as error:
        with pytest.raises(InvalidPayloadError, match=re.escape(str(error))):
            _publisher(FakeSns()).account_deleted("john.doe@mail.com", idempotency_key="request-1")
    else:
        _publisher(FakeSns()).account_deleted("john.doe@mail.com", idempotency_key="request-1")


def test_publish_many_sends_ten_per_request_in_order() -> None:
    sns = FakeSns()
    emails = [f"user{i}@mail.com" for i in range(25)]
    published = _publisher(sns).publish_many({"email": email} for email in emails)
    assert [len(call) for call in sns.calls] == [10, 10, 5]
    subjects = [json.loads(entry["Message"])["subject"] for entry in sns.published]
    assert subjects == emails
    assert len({event.event_id for event in published}) == 25


def test_one_invalid_payload_stops_the_batch_before_anything_is_sent() -> None:
    sns = FakeSns()
    with pytest.raises(InvalidPayloadError, match="email: must be a valid email address"):
        _publisher(sns).publish_many([{"email": "a@mail.com"}, {"email": "b-at-mail.com"}])
    assert sns.calls == []


def test_entries_failed_by_sns_are_retried_with_the_same_event() -> None:
    throttled = {"Code": "Throttling", "Message": "Rate exceeded", "SenderFault": False}
    sns = FakeSns(
        lambda call, entry_id: throttled if call == 0 and entry_id in {"3", "7"} else None
    )
    published = _publisher(sns).publish_many({"email": f"u{i}@mail.com"} for i in range(10))
    assert [len(call) for call in sns.calls] == [10, 2]
    first, retry = sns.calls
    assert [e["Message"] for e in retry] == [first[3]["Message"], first[7]["Message"]]
    assert len(published) == 10


def test_entries_still_failing_are_reported_with_those_published() -> None:
    def failures(call: int, entry_id: str) -> dict[str, Any] | None:
        if entry_id == "1":
            return {"Code": "InvalidParameter", "Message": "bad", "SenderFault": True}
        if entry_id == "12":
            return {"Code": "InternalError", "Message": "oops", "SenderFault": False}
        return None

    sns = FakeSns(failures)
    with pytest.raises(PublishBatchError) as caught:
        _publisher(sns, max_attempts=3).publish_many({"email": f"u{i}@mail.com"} for i in range(15))
    error = caught.value
    assert [(f.index, f.code, f.sender_fault) for f in error.failed] == [
        (1, "InvalidParameter", True),
        (12, "InternalError", False),
    ]
    assert len(error.published) == 13
    # The sender's fault is not retried; the service's is, up to max_attempts.
    assert [len(call) for call in sns.calls] == [10, 5, 1, 1]
    assert "2 of 15 audit events were not published" in str(error)


def test_a_failed_request_is_retried_then_reported_for_each_of_its_entries() -> None:
    class Unavailable(FakeSns):
        def publish_batch(
            self,
            TopicArn: str,
            PublishBatchRequestEntries: list[dict[str, Any]],
        ) -> Any:
            self.calls.append(PublishBatchRequestEntries)
            raise ClientError(
                {
                    "Error": {"Code": "ServiceUnavailable", "Message": "down"},
                    "ResponseMetadata": {"HTTPStatusCode": 503},
                },
                "PublishBatch",
            )

    sns = Unavailable()
    with pytest.raises(PublishBatchError) as caught:
        _publisher(sns, max_attempts=2).publish_many({"email": f"u{i}@mail.com"} for i in range(3))
    assert len(sns.calls) == 2
    assert [f.code for f in caught.value.failed] == ["ServiceUnavailable"] * 3
    assert caught.value.published == []


def test_a_topic_arn_is_required() -> None:
    with pytest.raises(ValueError, match="topic_arn: must be a topic ARN"):
        AuditPublisher("AuditTopic")
