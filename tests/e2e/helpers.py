"""Small readers of the emulator's state shared by the end-to-end tests."""

from __future__ import annotations

import json
from typing import Any

from audit_stack.local import Invocation, LocalAuditPipeline


def subject_of(pipeline: LocalAuditPipeline, email: str) -> str:
    """The subject the stack records an address under (its pseudonym, or itself in clear)."""
    return pipeline.subject_of(email)


def records_of(pipeline: LocalAuditPipeline, email: str) -> list[dict[str, Any]]:
    """Every item recorded for the account ``email`` (the partition key read from the table's
    schema, its value derived as the stack derives it)."""
    subject = subject_of(pipeline, email)
    ddb = pipeline.client("dynamodb")
    table = pipeline.table_name
    schema = ddb.describe_table(TableName=table)["Table"]["KeySchema"]
    partition_key = next(key["AttributeName"] for key in schema if key["KeyType"] == "HASH")
    items: list[dict[str, Any]] = ddb.query(
        TableName=table,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": partition_key},
        ExpressionAttributeValues={":pk": {"S": subject}},
        ConsistentRead=True,
    )["Items"]
    return items


def queue_counts(pipeline: LocalAuditPipeline, output: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue whose URL is the stack output ``output``."""
    attributes = pipeline.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.outputs[output],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def drain(pipeline: LocalAuditPipeline, output: str) -> list[dict[str, Any]]:
    """Receive (and delete) every message of a queue that no event source consumes."""
    sqs = pipeline.client("sqs")
    url = pipeline.outputs[output]
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        messages += batch
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def bodies(invocation: Invocation) -> list[str]:
    """The SQS message bodies of an event-source invocation."""
    return [record["body"] for record in invocation.event["Records"]]


def audit_event_of(body: str) -> dict[str, Any]:
    """The audit event inside an SQS body (the SNS envelope's Message)."""
    event: dict[str, Any] = json.loads(json.loads(body)["Message"])
    return event


def queue_template(template: dict[str, Any], pipeline: LocalAuditPipeline) -> dict[str, Any]:
    """The template properties of the queue behind the stack output QueueUrl."""
    url = pipeline.outputs["QueueUrl"]
    logical_id = next(
        logical
        for logical, resource in pipeline.deployment.resources.items()
        if resource.ref == url
    )
    properties: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return properties
