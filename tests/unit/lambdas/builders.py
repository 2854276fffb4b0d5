"""Builders of audit events and of the SNS-in-SQS Lambda events that carry them, shaped as AWS's."""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from audit_events.event import AuditEvent, new_account_deleted
from audit_stack.local.control.sns_signing import NotificationSigner

REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"  # moto's default account
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:AuditPipelineStack-AuditTopic5F3A1C2B-Xy7kLmN0pQrS"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:AuditPipelineStack-AuditQueue1C2D3E4F-AbCdEfGhIjKl"
# The SenderId SQS reports for messages that SNS delivered.
SNS_SENDER_ID = "AIDAIT2UOQQY3AUEKVGXU"
EMAIL = "john.doe@mail.com"


@functools.cache
def sns_test_signer() -> NotificationSigner:
    """The tests' SNS: a key and certificate made once per session, at an SNS-shaped URL that
    is never fetched (the tests pin it in the recorder's certificate cache, as the emulator's
    worker bootstrap pins the emulator's)."""
    return NotificationSigner.generate(f"https://sns.{REGION}.amazonaws.com", folder="")


@functools.cache
def other_signer() -> NotificationSigner:
    """A second key and certificate, trusted too: a signature by one checked against the
    other's certificate must fail."""
    return NotificationSigner.generate(f"https://sns.{REGION}.amazonaws.com", folder="")


def account_deleted(email: str = EMAIL, *, second: int = 0) -> AuditEvent:
    """An AccountDeleted event, ``second`` seconds into 2025-03-14T09:26Z, with a fresh id."""
    return new_account_deleted(
        email,
        now=datetime(2025, 3, 14, 9, 26, second, 412907, tzinfo=UTC),
        event_id=str(uuid.uuid4()),
    )


def sns_notification(
    message: str,
    *,
    sns_message_id: str | None = None,
    topic_arn: str = TOPIC_ARN,
    timestamp: str = "2025-03-14T09:26:53.589Z",
    event_type: str = "AccountDeleted",
    signer: NotificationSigner | None = None,
    changes: dict[str, Any] | None = None,
) -> str:
    """An SQS message body as SNS writes it (raw message delivery off): pretty-printed JSON,
    signed by ``signer`` (default: the tests' SNS), then with ``changes`` made to its fields
    (None removes one): a tampered or forged notification."""
    fields: dict[str, Any] = (signer or sns_test_signer()).sign(
        {
            "Type": "Notification",
            "MessageId": sns_message_id or str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Message": message,
            "Timestamp": timestamp,
            "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe"
            f"&SubscriptionArn={topic_arn}:2f0e5c1a-7b3d-4e9f-8a6c-1d4b7e0a3c5f",
        }
    )
    for name, value in (changes or {}).items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    lines = [f"  {json.dumps(name)} : {json.dumps(value)}" for name, value in fields.items()]
    attribute = json.dumps({"Type": "String", "Value": event_type}, separators=(",", ":"))
    lines.append(f'  "MessageAttributes" : {{\n    "event_type" : {attribute}\n  }}')
    return "{\n" + ",\n".join(lines) + "\n}"


def signed_again(body: str, signer: NotificationSigner | None = None) -> str:
    """A body captured from AWS, its signature replaced by the tests' SNS's (layout kept): AWS's
    own certificate is never fetched in tests."""
    envelope = json.loads(body)
    signed = (signer or sns_test_signer()).sign(envelope)
    for name in ("Signature", "SigningCertURL"):
        body = body.replace(json.dumps(envelope[name]), json.dumps(signed[name]), 1)
    return body


def sqs_record(
    body: str,
    *,
    message_id: str | None = None,
    receive_count: int = 1,
    queue_arn: str = QUEUE_ARN,
) -> dict[str, Any]:
    """One record of an SQS-triggered Lambda event, with every field AWS sends."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a" + uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1741944413621",
            "SenderId": SNS_SENDER_ID,
            "ApproximateFirstReceiveTimestamp": "1741944413629",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    """The Lambda event for a batch of SQS records."""
    return {"Records": list(records)}


def record_for(event: AuditEvent, *, message_id: str | None = None) -> dict[str, Any]:
    """The SQS record that delivers ``event`` the way the pipeline does."""
    return sqs_record(sns_notification(event.to_json()), message_id=message_id)


def sqs_event_from_received(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The Lambda event that the SQS event source builds from messages ReceiveMessage returned."""
    return sqs_event(
        *(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    name: message["Attributes"][name]
                    for name in (
                        "ApproximateReceiveCount",
                        "SentTimestamp",
                        "SenderId",
                        "ApproximateFirstReceiveTimestamp",
                    )
                },
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
            for message in messages
        )
    )
