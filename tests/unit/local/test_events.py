"""The pure translation between SQS and Lambda: records, and which messages a result deletes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from audit_stack.local.esm.events import (
    fitting_prefix,
    sqs_event,
    sqs_record,
    successful_messages,
)
from audit_stack.local.runtime.registry import InvocationResult

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:audit"


def message(message_id: str, body: str = "{}") -> dict[str, Any]:
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"handle-{message_id}",
        "Body": body,
        "MD5OfBody": "md5",
        "Attributes": {"ApproximateReceiveCount": "1"},
        "MessageAttributes": {
            "kind": {"DataType": "String", "StringValue": "audit"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
        "MD5OfMessageAttributes": "md5-attributes",
    }


def result(payload: Any = None, *, function_error: str | None = None) -> InvocationResult:
    body = b"" if payload is None else json.dumps(payload).encode()
    return InvocationResult("request", body, function_error, ())


BATCH = [message("a"), message("b"), message("c")]


def ids(messages: list[dict[str, Any]]) -> list[str]:
    return [item["MessageId"] for item in messages]


def test_record_has_lambdas_sqs_event_shape() -> None:
    record = sqs_record(message("a", "hello"), QUEUE_ARN, "us-east-1")

    assert record["messageId"] == "a"
    assert record["receiptHandle"] == "handle-a"
    assert record["body"] == "hello"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == QUEUE_ARN
    assert record["awsRegion"] == "us-east-1"
    assert record["md5OfMessageAttributes"] == "md5-attributes"
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "audit",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="


def test_event_lists_every_message_in_order() -> None:
    event = json.loads(sqs_event(BATCH, QUEUE_ARN, "us-east-1"))

    assert [record["messageId"] for record in event["Records"]] == ["a", "b", "c"]


def test_function_error_deletes_nothing() -> None:
    failed = result({"errorMessage": "boom"}, function_error="Unhandled")

    assert successful_messages(BATCH, failed, report_batch_item_failures=True) == []
    assert successful_messages(BATCH, failed, report_batch_item_failures=False) == []


def test_without_partial_responses_any_success_deletes_the_whole_batch() -> None:
    answer = result({"batchItemFailures": [{"itemIdentifier": "b"}]})

    assert ids(successful_messages(BATCH, answer, report_batch_item_failures=False)) == [
        "a",
        "b",
        "c",
    ]


def test_reported_failures_stay_and_the_rest_is_deleted() -> None:
    answer = result({"batchItemFailures": [{"itemIdentifier": "b"}]})

    assert ids(successful_messages(BATCH, answer, report_batch_item_failures=True)) == ["a", "c"]


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"batchItemFailures": None}, {"batchItemFailures": []}, "ok"],
    ids=["null", "empty-object", "null-list", "empty-list", "not-an-object"],
)
def test_empty_or_null_batch_response_deletes_all(payload: Any) -> None:
    answer = result(payload)

    assert ids(successful_messages(BATCH, answer, report_batch_item_failures=True)) == [
        "a",
        "b",
        "c",
    ]


@pytest.mark.parametrize(
    "failures",
    [
        [{"itemIdentifier": "unknown"}],
        [{"itemIdentifier": ""}],
        [{"itemIdentifier": None}],
        [{}],
        ["b"],
        "b",
    ],
    ids=["unknown-id", "empty-id", "null-id", "no-id", "not-an-object", "not-a-list"],
)
def test_invalid_batch_response_deletes_nothing(failures: Any) -> None:
    answer = result({"batchItemFailures": failures})

    assert successful_messages(BATCH, answer, report_batch_item_failures=True) == []


def test_response_that_is_not_json_deletes_nothing() -> None:
    answer = InvocationResult("request", b"not json", None, ())

    assert successful_messages(BATCH, answer, report_batch_item_failures=True) == []


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_the_fitting_prefix_is_the_longest_batch_whose_event_fits_the_limit(count: int) -> None:
    batch = [message(str(index), "é" * (100 + index)) for index in range(10)]
    exact = len(sqs_event(batch[:count], QUEUE_ARN, "us-east-1"))

    assert fitting_prefix(batch, QUEUE_ARN, "us-east-1", exact) == count
    assert fitting_prefix(batch, QUEUE_ARN, "us-east-1", exact - 1) == max(count - 1, 1)


def test_one_message_always_fits_even_above_the_limit() -> None:
    assert fitting_prefix([message("a", "x" * 100)], QUEUE_ARN, "us-east-1", 10) == 1
