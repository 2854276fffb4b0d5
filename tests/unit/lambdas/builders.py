"""Builders of audit events and of the SNS-in-SQS Lambda events that carry them, shaped as AWS's."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from audit_events.event import AuditEvent, new_account_deleted

REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"  # moto's default account
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:AuditPipelineStack-AuditTopic5F3A1C2B-Xy7kLmN0pQrS"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:AuditPipelineStack-AuditQueue1C2D3E4F-AbCdEfGhIjKl"
# The SenderId SQS reports for messages that SNS delivered.
SNS_SENDER_ID = "AIDAIT2UOQQY3AUEKVGXU"
EMAIL = "john.doe@mail.com"

_SIGNATURE = (
    "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkk"
    "OxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q="
)
_SIGNING_CERT = "SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"


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
) -> str:
    """An SQS message body as SNS writes it (raw message delivery off): pretty-printed JSON."""
    fields = {
        "Type": "Notification",
        "MessageId": sns_message_id or str(uuid.uuid4()),
        "TopicArn": topic_arn,
        "Message": message,
        "Timestamp": timestamp,
        "SignatureVersion": "2",
        "Signature": _SIGNATURE,
        "SigningCertURL": f"https://sns.{REGION}.amazonaws.com/{_SIGNING_CERT}",
        "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe"
        f"&SubscriptionArn={topic_arn}:2f0e5c1a-7b3d-4e9f-8a6c-1d4b7e0a3c5f",
    }
    lines = [f"  {json.dumps(name)} : {json.dumps(value)}" for name, value in fields.items()]
    attribute = json.dumps({"Type": "String", "Value": event_type}, separators=(",", ":"))
    lines.append(f'  "MessageAttributes" : {{\n    "event_type" : {attribute}\n  }}')
    return "{\n" + ",\n".join(lines) + "\n}"


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
