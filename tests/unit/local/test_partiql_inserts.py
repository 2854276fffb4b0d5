"""The emulator's PartiQL INSERT (``partiql_inserts``): DynamoDB's documented answers to the
recorder's batched writes, which moto's own parser refuses, and nothing else taken from moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from audit_stack.lambda_code import audit_events_module
from audit_stack.local.control.partiql_inserts import (
    DUPLICATE_ITEM,
    PartiqlInsertHooks,
    parse_insert,
)
from audit_stack.local.instruments.metering import statement_outcomes

items = audit_events_module("items")
TABLE = "audit"
REGION = "eu-west-1"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    hooks = PartiqlInsertHooks()
    hooks.install()
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name=REGION)
            client.create_table(
                TableName=TABLE,
                BillingMode="PAY_PER_REQUEST",
                KeySchema=[
                    {"AttributeName": "subject", "KeyType": "HASH"},
                    {"AttributeName": "event_key", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "subject", "AttributeType": "S"},
                    {"AttributeName": "event_key", "AttributeType": "S"},
                ],
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
            )
            yield client
    finally:
        hooks.uninstall()


def _item(key: str, **more: Any) -> dict[str, Any]:
    return {"subject": {"S": "s"}, "event_key": {"S": key}, "n": {"N": "1.50"}, **more}


def test_the_recorders_statement_is_parsed_into_its_table_and_item() -> None:
    item = _item("k", details={"M": {"a": {"L": [{"S": "x"}]}}})
    statement = items.insert_statement(TABLE, item)

    assert statement["Statement"] == (
        "INSERT INTO \"audit\" VALUE {'subject': ?, 'event_key': ?, 'n': ?, 'details': ?}"
    )
    assert parse_insert(statement["Statement"], statement["Parameters"]) == (TABLE, item)


@pytest.mark.parametrize(
    ("statement", "parameters"),
    [
        ('SELECT * FROM "audit" WHERE subject = ?', [{"S": "s"}]),
        ("INSERT INTO \"audit\" VALUE {'subject': 's', 'event_key': ?}", [{"S": "k"}]),
        ("INSERT INTO \"audit\" VALUE {'subject': ?, 'event_key': ?}", [{"S": "s"}]),
        ("INSERT INTO \"audit\" VALUE {'subject': ?, 'subject': ?}", [{"S": "s"}, {"S": "t"}]),
        ('UPDATE "audit" SET n = ? WHERE subject = ?', [{"N": "2"}, {"S": "s"}]),
    ],
    ids=["select", "a literal value", "too few parameters", "a name twice", "update"],
)
def test_any_other_statement_is_left_to_moto(statement: str, parameters: list[Any]) -> None:
    assert parse_insert(statement, parameters) is None


@pytest.mark.parametrize("name", ["it's", 'a"b', "a b", ""])
def test_the_recorder_names_no_attribute_a_statement_cannot_spell(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be named in a PartiQL statement"):
        items.insert_statement(TABLE, {name: {"S": "x"}})


def test_an_insert_stores_a_new_key_once_and_answers_duplicate_item_after(dynamodb: Any) -> None:
    first = _item("k")
    again = _item("k", n={"N": "2"})  # the same key, other content: not written over
    other = _item("other")

    answers = dynamodb.batch_execute_statement(
        Statements=[items.insert_statement(TABLE, item) for item in (first, again, other)]
    )["Responses"]

    assert [answer.get("Error", {}).get("Code") for answer in answers] == [
        None,
        DUPLICATE_ITEM,
        None,
    ]
    stored = dynamodb.get_item(
        TableName=TABLE, Key={"subject": {"S": "s"}, "event_key": {"S": "k"}}
    )
    assert stored["Item"] == first


def test_each_statement_is_answered_on_its_own(dynamodb: Any) -> None:
    no_key = {"n": {"N": "1"}}
    answers = dynamodb.batch_execute_statement(
        Statements=[
            items.insert_statement(TABLE, no_key),
            items.insert_statement("missing", _item("k")),
            items.insert_statement(TABLE, _item("k")),
        ]
    )["Responses"]

    assert [answer.get("Error", {}).get("Code") for answer in answers] == [
        "ValidationError",
        "ResourceNotFound",
        None,
    ]


def test_a_stored_item_is_on_the_tables_stream_as_an_insert(dynamodb: Any) -> None:
    dynamodb.batch_execute_statement(Statements=[items.insert_statement(TABLE, _item("k"))])
    dynamodb.batch_execute_statement(Statements=[items.insert_statement(TABLE, _item("k"))])

    # moto answers DescribeStream "Not yet implemented": its shard is read as the emulator's
    # stream sources read it.
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    shard = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(TABLE).stream_shard
    assert shard is not None
    records = [found.to_json() for found in shard.items]

    # The duplicate wrote nothing, so it streamed nothing.
    assert [record["eventName"] for record in records] == ["INSERT"]
    assert records[0]["dynamodb"]["NewImage"] == _item("k")


def test_the_meter_bills_each_insert_that_stored_or_found_its_key_and_counts_statement_errors() -> (
    None
):
    small, large = _item("small"), _item("large", blob={"S": "x" * 1500})
    body = json.dumps(
        {"Statements": [items.insert_statement(TABLE, item) for item in (small, large, small)]}
    ).encode()
    answer = json.dumps(
        {
            "Responses": [
                {"TableName": TABLE},
                {"TableName": TABLE, "Error": {"Code": DUPLICATE_ITEM, "Message": "taken"}},
                {"TableName": TABLE, "Error": {"Code": "ThrottlingError", "Message": "slow"}},
            ]
        }
    ).encode()

    outcomes = statement_outcomes(body, answer)

    # DynamoDB's item size: names plus values, "subject" "s" 8 + "event_key" "small" 14 + "n"
    # 1.50 (two significant digits: 2 bytes) 3 = 25; the large one 4 + 1500 more. The
    # throttled statement wrote nothing and is not billed.
    assert outcomes.insert_sizes == [25, 1529]
    assert outcomes.errors == {DUPLICATE_ITEM: 1, "ThrottlingError": 1}
