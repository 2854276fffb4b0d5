"""Pure functions between SQS and Lambda: messages -> an SQS event, and an invocation's result ->
the messages Lambda deletes (partial batch responses included)."""

from __future__ import annotations

import base64
import json
from typing import Any

from audit_stack.local.runtime.registry import InvocationResult


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message (as boto3 receives it) in the format of Lambda's SQS event records."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update(
        {
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
    )
    return record


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> bytes:
    """The invocation payload for a batch: ``{"Records": [...]}``, as JSON."""
    records = [sqs_record(message, queue_arn, region) for message in messages]
    return json.dumps({"Records": records}).encode()


def fitting_prefix(
    messages: list[dict[str, Any]], queue_arn: str, region: str, limit_bytes: int
) -> int:
    """How many of ``messages``, from the first, make an :func:`sqs_event` of at most
    ``limit_bytes`` (at least one: a single SQS message always fits Lambda's payload)."""
    size = len(json.dumps({"Records": []}))
    for count, message in enumerate(messages):
        record = len(json.dumps(sqs_record(message, queue_arn, region)).encode())
        size += record + (2 if count else 0)  # ", " between records
        if size > limit_bytes:
            return max(count, 1)
    return len(messages)


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    converted["stringListValues"] = list(value.get("StringListValues", []))
    converted["binaryListValues"] = [
        base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])
    ]
    converted["dataType"] = value["DataType"]
    return converted


def successful_messages(
    messages: list[dict[str, Any]], result: InvocationResult, *, report_batch_item_failures: bool
) -> list[dict[str, Any]]:
    """The messages of a batch that Lambda deletes after this invocation result.

    A function error or timeout deletes none. With ReportBatchItemFailures, an empty or null
    response or batchItemFailures list deletes all, and an invalid one (not JSON, an empty, null
    or unknown itemIdentifier) deletes none, as AWS documents.
    """
    if result.function_error is not None:
        return []
    if not report_batch_item_failures:
        return messages
    try:
        response = json.loads(result.payload) if result.payload else None
    except ValueError:
        return []
    if not isinstance(response, dict):
        return messages
    failures = response.get("batchItemFailures")
    if failures is None:
        return messages
    if not isinstance(failures, list):
        return []
    ids = {message["MessageId"] for message in messages}
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in ids:
            return []
        failed.add(identifier)
    return [message for message in messages if message["MessageId"] not in failed]
