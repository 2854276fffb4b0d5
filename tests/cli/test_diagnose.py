"""The CLI's pure parts: why a DLQ body fails (the recorder's verdict), ISO dates, the key range."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from audit_events.event import PoisonMessageError, parse_sns_envelope
from audit_stack.cli.dates import Moment, event_key_bounds, iso_moment, timestamp
from audit_stack.cli.dlq import RECORDABLE, Diagnosis, SignatureCheck, diagnose
from audit_stack.cli.errors import UsageError
from audit_stack.lambda_code import audit_events_module, contract
from audit_stack.local.control.sns_signing import NotificationSigner

EVENT = {
    "schema_version": 1,
    "event_id": "0b7c5d6e-1f2a-4b3c-9d4e-5f6a7b8c9d0e",
    "event_type": "AccountDeleted",
    "occurred_at": "2026-11-29T04:47:01.123456Z",
    "subject": "john.doe@mail.com",
    "source": "deleteAccount",
    "details": {"email": "john.doe@mail.com"},
}


def notification(message: Any) -> str:
    text = message if isinstance(message, str) else json.dumps(message)
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "6f0e6c1e-2a4b-4c3d-8e5f-1a2b3c4d5e6f",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:topic",
            "Timestamp": "2026-11-29T04:47:01.200Z",
            "Message": text,
        }
    )


POISON = {
    "not JSON": ("{not json", "body: must be valid JSON"),
    "JSON array": ("[1, 2]", "body: must be a JSON object"),
    "bare event": (json.dumps(EVENT), 'Type: must be "Notification"'),
    "other envelope": (
        json.dumps({"Type": "SubscriptionConfirmation"}),
        'Type: must be "Notification"',
    ),
    "message not JSON": (notification("hello"), "message: must be valid JSON"),
    "message not an object": (notification("[]"), "message: must be a JSON object"),
    "missing field": (
        notification({k: v for k, v in EVENT.items() if k != "occurred_at"}),
        "occurred_at: is required",
    ),
    "future schema": (
        notification({**EVENT, "schema_version": 4}),
        "schema_version: must be 1, 2 or 3, the versions understood",
    ),
    "empty subject": (
        notification({**EVENT, "subject": ""}),
        "subject: must be 1 to 1024 characters",
    ),
    "details not an object": (
        notification({**EVENT, "details": "x"}),
        "details: must be a JSON object",
    ),
    # What the old light check let through as "looks valid": the recorder refuses them.
    "bad event id": (notification({**EVENT, "event_id": "not-a-uuid"}), "event_id: must be a"),
    "bad timestamp": (
        notification({**EVENT, "occurred_at": "2026-11-29 04:47"}),
        "occurred_at: must be a UTC timestamp",
    ),
    "unexpected field": (notification({**EVENT, "extra": 1}), "message: unexpected field(s)"),
}


@pytest.mark.parametrize("case", sorted(POISON))
def test_diagnosis_is_the_recorders_own_verdict(case: str) -> None:
    body, problem = POISON[case]

    diagnosis = diagnose(body)

    assert diagnosis.poison is True
    assert diagnosis.problem.startswith(problem)
    # Word for word what the recorder says when it dead-letters the body.
    with pytest.raises(PoisonMessageError) as refused:
        parse_sns_envelope(body)
    assert diagnosis.problem == str(refused.value)


def test_a_valid_notification_is_recordable_and_names_its_event() -> None:
    body = notification(EVENT)

    diagnosis = diagnose(body)

    assert diagnosis == Diagnosis(False, RECORDABLE, f"AccountDeleted {EVENT['event_id']}")
    parse_sns_envelope(body)


def test_a_refused_body_names_its_event_by_type_and_id_only() -> None:
    bare = diagnose(json.dumps(EVENT))
    odd_type = diagnose(notification({**EVENT, "event_type": "john.doe@mail.com"}))

    assert bare.event == f"AccountDeleted {EVENT['event_id']}"
    # A field in an unexpected shape is not shown: it may be anything, personal data included.
    assert odd_type.event is None
    assert "john.doe" not in (odd_type.problem + str(odd_type.event))


@pytest.mark.parametrize(
    ("text", "expected", "whole_day"),
    [
        ("2026-11-29", datetime(2026, 11, 29, tzinfo=UTC), True),
        ("2026-11-29T10:00:00Z", datetime(2026, 11, 29, 10, tzinfo=UTC), False),
        ("2026-11-29T10:00:00", datetime(2026, 11, 29, 10, tzinfo=UTC), False),
        ("2026-11-29T11:30:00+01:00", datetime(2026, 11, 29, 10, 30, tzinfo=UTC), False),
        ("2026-11-29 10:00:00.5", datetime(2026, 11, 29, 10, 0, 0, 500000, tzinfo=UTC), False),
    ],
)
def test_iso_dates_naive_means_utc(text: str, expected: datetime, whole_day: bool) -> None:
    moment = iso_moment(text)

    assert moment == Moment(expected, whole_day)
    assert moment.value.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["", "tomorrow", "2026-02-30", "29/11/2026", "2026-11-29T25:00"])
def test_bad_dates_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not an ISO 8601 date or date-time"):
        iso_moment(text)


def test_a_whole_day_until_includes_every_key_of_its_last_microsecond() -> None:
    day = iso_moment("2026-11-29")
    instant = iso_moment("2026-11-29T10:00:00+00:00")

    _, by_day = event_key_bounds(None, day)
    by_instant = event_key_bounds(instant, instant)

    assert by_day == "2026-11-29T23:59:59.999999Z~"
    assert by_day > "2026-11-29T23:59:59.999999Z#ffffffff"
    assert by_day < "2026-11-30T00:00:00.000000Z#0"
    assert by_instant == ("2026-11-29T10:00:00.000000Z", "2026-11-29T10:00:00.000000Z~")
    assert timestamp(datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=2)))) == (
        "2025-12-31T23:00:00.000000Z"
    )


def test_the_contract_the_cli_reads_matches_the_synthesized_table(
    template_json: dict[str, Any],
) -> None:
    (table,) = [
        resource["Properties"]
        for resource in template_json["Resources"].values()
        if resource["Type"] == "AWS::DynamoDB::Table"
        and resource["Metadata"]["aws:cdk:path"].endswith("/Audit/Table/Resource")
    ]
    keys = {key["KeyType"]: key["AttributeName"] for key in table["KeySchema"]}
    (index,) = [
        i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == contract.EVENT_TYPE_INDEX
    ]
    index_keys = {key["KeyType"]: key["AttributeName"] for key in index["KeySchema"]}

    assert keys == {"HASH": contract.PARTITION_KEY, "RANGE": contract.SORT_KEY}
    assert index_keys == {"HASH": contract.EVENT_TYPE_SHARD_ATTRIBUTE, "RANGE": contract.SORT_KEY}
    assert index["Projection"] == {"ProjectionType": "ALL"}


def test_a_since_after_until_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--since is after --until"):
        event_key_bounds(iso_moment("2026-11-30"), iso_moment("2026-11-29"))


# The module object the CLI checks with (loaded as audit_stack.lambdas.audit_events).
sns_signature = audit_events_module("sns_signature")


def _signed_check() -> tuple[Any, SignatureCheck]:
    """A signer whose certificate is pinned (as the emulator's is), and the topic's check."""
    signer = NotificationSigner.generate("https://sns.us-east-1.amazonaws.com", folder="")
    sns_signature.trust_certificate(signer.cert_url, signer.certificate_pem)
    return signer, SignatureCheck("arn:aws:sns:us-east-1:123456789012:topic")


def test_with_the_signature_check_an_unsigned_notification_is_poison_and_says_why() -> None:
    _, check = _signed_check()

    diagnosis = diagnose(notification(EVENT), check)

    assert diagnosis.poison is True
    assert diagnosis.problem.startswith('SignatureVersion: must be "2"')
    assert diagnosis.event == f"AccountDeleted {EVENT['event_id']}"


def test_with_the_signature_check_a_signed_notification_is_recordable_and_a_tampered_one_not() -> (
    None
):
    signer, check = _signed_check()
    signed = signer.sign(json.loads(notification(EVENT)))
    tampered = {**signed, "Message": json.dumps({**EVENT, "source": "forged"})}
    other_topic = signer.sign(
        {**json.loads(notification(EVENT)), "TopicArn": "arn:aws:sns:us-east-1:1:other"}
    )

    assert diagnose(json.dumps(signed), check).problem == RECORDABLE
    assert diagnose(json.dumps(tampered), check).problem.startswith(
        "Signature: does not match the notification"
    )
    assert diagnose(json.dumps(other_topic), check).problem == (
        "TopicArn: must be the recorder's own topic"
    )


def test_a_certificate_url_off_the_sns_host_is_diagnosed_without_fetching() -> None:
    _, check = _signed_check()
    forged = {
        **json.loads(notification(EVENT)),
        "SignatureVersion": "2",
        "Signature": "Zm9yZ2Vk",
        "SigningCertURL": "https://attacker.example/SimpleNotificationService-1.pem",
    }

    diagnosis = diagnose(json.dumps(forged), check)

    assert diagnosis.poison is True
    assert diagnosis.problem == (
        "SigningCertURL: must be https://sns.us-east-1.amazonaws.com/"
        "SimpleNotificationService-<id>.pem"
    )
