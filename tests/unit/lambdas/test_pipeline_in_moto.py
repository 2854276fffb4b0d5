"""End to end inside moto: deleteAccount -> SNS -> SQS -> recorder -> audit table."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events.event import parse_sns_envelope
from audit_events.subject import pseudonymous_subject

from .builders import sqs_event_from_received
from .conftest import EVENT_TYPE_INDEX, EVENT_TYPE_INDEX_SHARDS, MockTopic


def _receive_all(topic: MockTopic) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (
        boto3.client("sqs")
        .receive_message(
            QueueUrl=topic.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        .get("Messages", [])
    )
    return messages


def test_deleted_account_travels_from_publisher_to_audit_table_by_pseudonym(
    topic: MockTopic,
    audit_table: str,
    publisher: ModuleType,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    pseudonym_secret: bytes,
) -> None:
    published = publisher.handler({"email": "John.Doe@mail.com"}, lambda_context)
    messages = _receive_all(topic)
    batch = sqs_event_from_received(messages, topic.queue_arn)

    response = recorder.handler(batch, lambda_context)

    assert response == {"batchItemFailures": []}
    [message] = messages
    _, provenance = parse_sns_envelope(message["Body"])
    [item] = boto3.client("dynamodb").query(
        TableName=audit_table,
        KeyConditionExpression="subject = :subject",
        ExpressionAttributeValues={
            ":subject": {"S": pseudonymous_subject("john.doe@mail.com", pseudonym_secret)}
        },
    )["Items"]
    assert "john" not in str(item).lower()
    assert item["event_id"] == {"S": published["event_id"]}
    assert item["event_type"] == {"S": "AccountDeleted"}
    assert item["occurred_at"] == {"S": published["occurred_at"]}
    assert item["event_key"] == {"S": f"{published['occurred_at']}#{published['event_id']}"}
    assert item["details"] == {"M": {}}
    assert item["subject_type"] == {"S": "hmac-sha256"}
    assert item["source"] == {"S": "deleteAccount"}
    assert item["schema_version"] == {"N": "3"}
    assert item["sns_message_id"] == {"S": provenance.sns_message_id}
    assert item["recorded_at"]["S"] >= published["occurred_at"]


def test_recorded_events_are_listed_by_type_in_time_order_across_the_shards(
    topic: MockTopic,
    audit_table: str,
    publisher: ModuleType,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    pseudonym_secret: bytes,
) -> None:
    published = [
        publisher.handler({"email": f"user{number}@mail.com"}, lambda_context)
        for number in range(10)
    ]
    recorder.handler(sqs_event_from_received(_receive_all(topic), topic.queue_arn), lambda_context)

    items = [
        item
        for shard in range(EVENT_TYPE_INDEX_SHARDS)
        for item in boto3.client("dynamodb").query(
            TableName=audit_table,
            IndexName=EVENT_TYPE_INDEX,
            KeyConditionExpression="event_type_shard = :shard",
            ExpressionAttributeValues={":shard": {"S": f"AccountDeleted#{shard}"}},
        )["Items"]
    ]
    items.sort(key=lambda item: item["event_key"]["S"])

    assert [item["event_id"]["S"] for item in items] == [
        event["event_id"] for event in sorted(published, key=lambda event: event["occurred_at"])
    ]
