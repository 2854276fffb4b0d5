"""The CLI's pure parts: why a DLQ body fails, ISO dates, and the data model it relies on."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from audit_events.event import PoisonMessageError, parse_sns_envelope
from audit_stack import cli

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
    "not JSON": ("{not json", "not JSON"),
    "JSON array": ("[1, 2]", "not an SNS notification: the body is JSON but not an object"),
    "bare event": (
        json.dumps(EVENT),
        "not an SNS notification: a bare event (sent straight to the queue, or raw delivery)",
    ),
    "other envelope": (json.dumps({"Type": "SubscriptionConfirmation"}), "not an SNS notification"),
    "message not JSON": (notification("hello"), "the SNS Message is not JSON"),
    "message not an object": (notification("[]"), "the SNS Message is not a JSON object"),
    "missing field": (
        notification({k: v for k, v in EVENT.items() if k != "occurred_at"}),
        "event field occurred_at: is required",
    ),
    "future schema": (
        notification({**EVENT, "schema_version": 3}),
        "event field schema_version: 3 is not understood",
    ),
    "empty subject": (
        notification({**EVENT, "subject": ""}),
        "event field subject: must be a non-empty string",
    ),
    "details not an object": (
        notification({**EVENT, "details": "x"}),
        "event field details: must be a JSON object",
    ),
}


@pytest.mark.parametrize("case", sorted(POISON))
def test_diagnosis_names_the_problem_and_the_recorder_agrees(case: str) -> None:
    body, problem = POISON[case]

    assert cli.diagnose(body)[0] == problem
    # The recorder's own parser is the oracle: the CLI never blames a body the recorder accepts.
    with pytest.raises(PoisonMessageError):
        parse_sns_envelope(body)


def test_a_valid_notification_has_no_problem_and_names_its_event() -> None:
    body = notification(EVENT)

    problem, event = cli.diagnose(body)

    assert problem.startswith("looks valid (light check)")
    assert event == f"AccountDeleted {EVENT['event_id']}"
    parse_sns_envelope(body)


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
    moment = cli.iso_moment(text)

    assert moment == cli.Moment(expected, whole_day)
    assert moment.value.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["", "tomorrow", "2026-02-30", "29/11/2026", "2026-11-29T25:00"])
def test_bad_dates_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not an ISO 8601 date or date-time"):
        cli.iso_moment(text)


def test_a_whole_day_until_includes_every_key_of_its_last_microsecond() -> None:
    day = cli.iso_moment("2026-11-29")
    instant = cli.iso_moment("2026-11-29T10:00:00+00:00")

    _, by_day = cli._event_key_condition(None, day)
    _, by_instant = cli._event_key_condition(instant, instant)

    assert by_day[":until"]["S"] == "2026-11-29T23:59:59.999999Z~"
    assert by_day[":until"]["S"] > "2026-11-29T23:59:59.999999Z#ffffffff"
    assert by_day[":until"]["S"] < "2026-11-30T00:00:00.000000Z#0"
    assert by_instant == {
        ":since": {"S": "2026-11-29T10:00:00.000000Z"},
        ":until": {"S": "2026-11-29T10:00:00.000000Z~"},
    }
    assert cli._timestamp(datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=2)))) == (
        "2025-12-31T23:00:00.000000Z"
    )


def test_the_clis_data_model_matches_the_synthesized_table(template_json: dict[str, Any]) -> None:
    (table,) = [
        resource["Properties"]
        for resource in template_json["Resources"].values()
        if resource["Type"] == "AWS::DynamoDB::Table"
        and resource["Metadata"]["aws:cdk:path"].endswith("/Audit/Table/Resource")
    ]
    keys = {key["KeyType"]: key["AttributeName"] for key in table["KeySchema"]}
    (index,) = [
        i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == cli.EVENT_TYPE_INDEX
    ]
    index_keys = {key["KeyType"]: key["AttributeName"] for key in index["KeySchema"]}

    assert keys == {"HASH": cli.PARTITION_KEY, "RANGE": cli.SORT_KEY}
    assert index_keys == {"HASH": cli.EVENT_TYPE_SHARD_ATTRIBUTE, "RANGE": cli.SORT_KEY}
    assert index["Projection"] == {"ProjectionType": "ALL"}
