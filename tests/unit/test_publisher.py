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

from audit_stack.lambda_code import audit_events_module, contract
from audit_stack.publisher import AuditPublisher, InvalidPayloadError, PublishBatchError

TOPIC = "arn:aws:sns:eu-west-1:123456789012:AuditTopic"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AuditPseudonymSecret-AbCdEf"
SECRET = "k" * 64


class FakeSecrets:
    """The pseudonym secret as Secrets Manager returns it; counts the reads."""

    def __init__(self) -> None:
        self.reads = 0

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        assert SecretId == SECRET_ARN
        self.reads += 1
        return {"SecretString": SECRET}


def _pseudonym(email: str) -> str:
    subject = audit_events_module("subject")
    return str(subject.pseudonymous_subject(subject.normalize_email(email), SECRET.encode()))


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
    if not options.get("subject_in_clear"):
        options.setdefault("pseudonym_secret_arn", SECRET_ARN)
        options.setdefault("secrets_client", FakeSecrets())
    return AuditPublisher(TOPIC, sns_client=sns, sleep=lambda seconds: None, **options)


def test_one_event_has_the_publisher_functions_envelope_and_no_address() -> None:
    sns = FakeSns()
    published = _publisher(sns).account_deleted("John.Doe@mail.com")
    (request,) = sns.published
    event = json.loads(request["Message"])
    assert event["event_type"] == "AccountDeleted" and event["source"] == "deleteAccount"
    assert event["subject"] == _pseudonym("John.Doe@mail.com")
    assert event["details"] == {}
    assert "john.doe" not in request["Message"].lower()
    assert request["MessageAttributes"] == {
        "event_type": {"DataType": "String", "StringValue": "AccountDeleted"}
    }
    assert (published.event_id, published.sns_message_id) == (event["event_id"], "m-1")
    # Byte for byte what the function's own builder makes of the same payload, id and time.
    occurred_at = datetime.strptime(event["occurred_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expected = audit_events_module("publication").account_deleted_publication(
        {"email": "John.Doe@mail.com"},
        now=occurred_at.replace(tzinfo=UTC),
        secret=SECRET.encode(),
        event_id=event["event_id"],
    )
    assert request["Message"] == expected.message


def test_a_clear_pipelines_publisher_sends_the_address_only_when_told_so() -> None:
    sns = FakeSns()
    _publisher(sns, subject_in_clear=True).account_deleted("John.Doe@mail.com")
    event = json.loads(sns.published[0]["Message"])
    assert (event["subject"], event["details"]) == (
        "john.doe@mail.com",
        {"email": "John.Doe@mail.com"},
    )
    with pytest.raises(ValueError, match="pseudonym_secret_arn: give the pipeline's"):
        AuditPublisher(TOPIC, sns_client=sns)
    with pytest.raises(ValueError, match="not both"):
        AuditPublisher(TOPIC, pseudonym_secret_arn=SECRET_ARN, subject_in_clear=True)


def test_the_secret_is_read_once_for_many_events() -> None:
    secrets = FakeSecrets()
    publisher = _publisher(FakeSns(), secrets_client=secrets)
    publisher.publish_many({"email": f"u{i}@mail.com"} for i in range(25))
    publisher.account_deleted("v@mail.com")
    assert secrets.reads == 1


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("not-an-address", "email: must be a valid email address"),
        ("x" * 250 + "@mail.com", "email: must be at most 254 bytes"),
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


def test_the_same_idempotency_key_publishes_the_same_event_as_the_function_would() -> None:
    sns = FakeSns()
    publisher = _publisher(sns)
    first = publisher.account_deleted("john.doe@mail.com", idempotency_key="request-1")
    retry = publisher.account_deleted("John.Doe@mail.com", idempotency_key="request-1")
    other = publisher.account_deleted("john.doe@mail.com", idempotency_key="request-2")
    assert first.event_id == retry.event_id != other.event_id
    assert json.loads(sns.published[0]["Message"])["idempotent"] is True
    with pytest.raises(InvalidPayloadError, match=re.escape("idempotency_key")):
        publisher.account_deleted("john.doe@mail.com", idempotency_key="")


def test_publish_many_sends_ten_per_request_in_order() -> None:
    sns = FakeSns()
    emails = [f"user{i}@mail.com" for i in range(25)]
    published = _publisher(sns).publish_many({"email": email} for email in emails)
    assert [len(call) for call in sns.calls] == [10, 10, 5]
    subjects = [json.loads(entry["Message"])["subject"] for entry in sns.published]
    assert subjects == [_pseudonym(email) for email in emails]
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


def test_clear_mode_is_refused_in_a_function_wired_to_a_pseudonymous_pipeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(contract.ENV_PSEUDONYM_SECRET_ARN, SECRET_ARN)
    sns = FakeSns()

    with pytest.raises(ValueError) as raised:
        AuditPublisher(TOPIC, subject_in_clear=True, sns_client=sns)
    keyed = AuditPublisher.from_environment(
        {contract.ENV_TOPIC_ARN: TOPIC, contract.ENV_PSEUDONYM_SECRET_ARN: SECRET_ARN},
        sns_client=sns,
        secrets_client=FakeSecrets(),
    )
    keyed.account_deleted("John.Doe@mail.com")

    assert str(raised.value).startswith("subject_in_clear: refused, this function's pipeline")
    assert sns.published and "john.doe" not in sns.published[0]["Message"].lower()
