"""What the emulator gives IAM for `audit redact`: the condition keys of a single-item write
(``dynamodb:Attributes``, ``dynamodb:ReturnValues``), and STS GetCallerIdentity as the caller."""

from __future__ import annotations

from xml.etree import ElementTree

from audit_stack.local.access.identities import OUTSIDE_ACCESS_KEY_ID, Identities
from audit_stack.local.http.operations import Operation
from audit_stack.local.services.sts_api import SESSION_NAME, CallerIdentityApi
from tests.unit.local.test_access import ACCOUNT, TABLE, json_request


def _context(name: str, body: dict[str, object]) -> dict[str, tuple[str, ...]]:
    (target,) = json_request("dynamodb", name, body)
    assert target.resource == TABLE
    return dict(target.context)


def test_an_update_names_its_key_and_every_attribute_of_its_expressions() -> None:
    context = _context(
        "UpdateItem",
        {
            "TableName": "Audit",
            "Key": {"subject": {"S": "s"}, "event_key": {"S": "k"}},
            "UpdateExpression": "SET #at = :at, reason = :r REMOVE #p0, details",
            "ConditionExpression": "attribute_exists(#s) AND attribute_not_exists(#at)",
            "ExpressionAttributeNames": {"#at": "redacted_at", "#p0": "actor", "#s": "subject"},
            "ReturnValues": "ALL_OLD",
        },
    )
    assert sorted(context["dynamodb:Attributes"]) == sorted(
        ["subject", "event_key", "redacted_at", "reason", "actor", "details"]
    )
    assert context["dynamodb:ReturnValues"] == ("ALL_OLD",)


def test_a_put_names_its_items_attributes_and_a_read_sets_no_write_keys() -> None:
    put = _context("PutItem", {"TableName": "Audit", "Item": {"subject": {}, "record_hash": {}}})
    assert put == {"dynamodb:Attributes": ("subject", "record_hash")}
    assert _context("GetItem", {"TableName": "Audit", "Key": {"subject": {}}}) == {}


def test_get_caller_identity_answers_as_the_outside_role_in_a_session() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/RedactionStack-BreakGlass-ABC"
    api = CallerIdentityApi(Identities(role), ACCOUNT)
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={OUTSIDE_ACCESS_KEY_ID}/20261205/us-east-1/sts/aws4_request"
    )
    response = api.handle(
        Operation("sts", "GetCallerIdentity", "query"), {"HTTP_AUTHORIZATION": authorization}, b""
    )
    assert response.status == "200 OK"
    namespace = {"sts": "https://sts.amazonaws.com/doc/2011-06-15/"}
    result = ElementTree.fromstring(response.body).find("sts:GetCallerIdentityResult", namespace)
    assert result is not None
    arn = result.findtext("sts:Arn", namespaces=namespace)
    assert arn == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/RedactionStack-BreakGlass-ABC/{SESSION_NAME}"
    )
    assert result.findtext("sts:Account", namespaces=namespace) == ACCOUNT


def test_each_write_of_a_transaction_names_its_own_attributes() -> None:
    put, delete = json_request(
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "Audit", "Item": {"subject": {}, "redacted_at": {}}}},
                {
                    "Delete": {
                        "TableName": "Audit",
                        "Key": {"subject": {}, "event_key": {}},
                        "ConditionExpression": "#h = :h",
                        "ExpressionAttributeNames": {"#h": "record_hash"},
                    }
                },
            ]
        },
    )
    assert dict(put.context) == {"dynamodb:Attributes": ("subject", "redacted_at")}
    assert dict(delete.context) == {"dynamodb:Attributes": ("subject", "event_key", "record_hash")}
