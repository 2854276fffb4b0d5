"""Events of any type: the catalogue's checks, version 3 events (subject, actor, details,
idempotency), and an InvoiceVoided from publication to the table in moto."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events import contract
from audit_events.catalogue import (
    CatalogueError,
    EventCatalogue,
    EventRuleError,
    catalogue_json,
    parse_catalogue,
)
from audit_events.event import (
    InvalidPayloadError,
    PoisonMessageError,
    build_event,
    new_account_deleted,
    parse_audit_event,
    pseudonymize,
    subject_key,
)
from audit_events.publication import event_publication
from audit_events.subject import idempotent_event_id, pseudonymous_subject

from .builders import record_for, sqs_event, sqs_event_from_received
from .conftest import MockTopic

NOW = datetime(2025, 3, 14, 9, 26, 53, 412907, tzinfo=UTC)
SECRET = b"s" * 32
INVOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_id": {"type": "string", "pattern": "^INV-[0-9]+$"},
        "amount_cents": {"type": "integer", "minimum": 0},
        "reason": {"enum": ["duplicate", "fraud", "customer request"]},
    },
    "required": ["invoice_id"],
    "additionalProperties": False,
}
CATALOGUE = EventCatalogue({"AccountDeleted": None, "InvoiceVoided": INVOICE_SCHEMA})


def _invoice_voided(**overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "subject": "cus_4QFJ2a",
        "details": {"invoice_id": "INV-1042", "amount_cents": 1999},
        "actor": "billing-ui",
        "source": "billing",
        "now": NOW,
        "secret": SECRET,
    }
    return build_event("InvoiceVoided", **{**arguments, **overrides})


# --- the catalogue ----------------------------------------------------------------------------


def test_a_type_outside_the_catalogue_is_refused_naming_the_types_it_has() -> None:
    with pytest.raises(EventRuleError) as raised:
        CATALOGUE.check("RefundIssued", {})

    assert str(raised.value) == (
        "event_type: must be one of this pipeline's event types (AccountDeleted, InvoiceVoided)"
    )


@pytest.mark.parametrize(
    ("details", "message"),
    [
        pytest.param({}, 'details: must have the properties ["invoice_id"]', id="required"),
        pytest.param(
            {"invoice_id": "jane@example.com"},
            'details.invoice_id: must match "^INV-[0-9]+$"',
            id="pattern",
        ),
        pytest.param(
            {"invoice_id": "INV-1", "amount_cents": -5},
            "details.amount_cents: must satisfy minimum 0",
            id="minimum",
        ),
        pytest.param(
            {"invoice_id": "INV-1", "amount_cents": "jane@example.com"},
            'details.amount_cents: must be of type "integer"',
            id="type",
        ),
        pytest.param(
            {"invoice_id": "INV-1", "reason": "jane@example.com"},
            'details.reason: must be one of ["duplicate", "fraud", "customer request"]',
            id="enum",
        ),
        pytest.param(
            {"invoice_id": "INV-1", "jane@example.com": 1},
            "details: must have no properties other than the schema's",
            id="additionalProperties",
        ),
    ],
)
def test_details_breaking_the_schema_name_the_field_and_rule_never_the_value(
    details: dict[str, Any], message: str
) -> None:
    with pytest.raises(EventRuleError) as raised:
        CATALOGUE.check("InvoiceVoided", details)

    assert str(raised.value) == message
    assert "jane" not in str(raised.value)


def test_details_matching_the_schema_and_types_without_one_pass() -> None:
    CATALOGUE.check("InvoiceVoided", {"invoice_id": "INV-1", "reason": "fraud"})
    CATALOGUE.check("AccountDeleted", {"anything": ["goes", 1]})


def test_the_environment_form_round_trips_and_bad_values_are_refused() -> None:
    text = catalogue_json(CATALOGUE.schemas)

    assert parse_catalogue(text).schemas == CATALOGUE.schemas
    for bad, message in [
        ("not json", "EVENT_CATALOGUE: must be valid JSON"),
        ("{}", "EVENT_CATALOGUE: must be a non-empty JSON object"),
        ('{"X":{"type":"string"}}', 'EVENT_CATALOGUE: X: details_schema must have "type"'),
    ]:
        with pytest.raises(CatalogueError, match=message):
            parse_catalogue(bad)


# --- version 3 events -------------------------------------------------------------------------


def test_an_identifier_subject_is_recorded_by_its_keyed_pseudonym_with_actor_and_details() -> None:
    event = _invoice_voided()

    assert event.schema_version == 3
    assert event.subject == pseudonymous_subject("cus_4QFJ2a", SECRET)
    assert event.subject_type == contract.SUBJECT_TYPE_PSEUDONYM
    assert event.actor == "billing-ui"
    assert event.source == "billing"
    assert event.details == {"invoice_id": "INV-1042", "amount_cents": 1999}
    assert parse_audit_event(event.to_json()) == event


def test_in_clear_an_identifier_keeps_its_case_and_says_it_is_an_identifier() -> None:
    event = _invoice_voided(subject="Cus_4QFJ2a", secret=None)

    assert (event.subject, event.subject_type) == ("Cus_4QFJ2a", "identifier")
    assert pseudonymize(event, SECRET).subject == pseudonymous_subject("Cus_4QFJ2a", SECRET)


def test_an_address_subject_has_the_same_pseudonym_whatever_the_event_type() -> None:
    deleted = new_account_deleted(
        "John.Doe@mail.com", now=NOW, event_id="9f1c2b4e-3d5a-4c8e-9b7f-2a6d1e0c5b3a", secret=SECRET
    )
    voided = _invoice_voided(subject="john.doe@MAIL.com")

    assert voided.subject == deleted.subject == subject_key("JOHN.DOE@mail.com", SECRET)


def test_an_idempotency_key_is_scoped_to_type_and_subject_and_account_deleted_keeps_v2_ids() -> (
    None
):
    first = _invoice_voided(idempotency_key="void-1042")
    retry = _invoice_voided(idempotency_key="void-1042", now=NOW + timedelta(seconds=5))
    other_type = build_event(
        "InvoicePaid", subject="cus_4QFJ2a", source="billing", idempotency_key="void-1042",
        now=NOW, secret=SECRET,
    )  # fmt: skip
    deleted = build_event(
        "AccountDeleted", subject="john.doe@mail.com", source="deleteAccount",
        idempotency_key="k-1", now=NOW, secret=SECRET,
    )  # fmt: skip

    assert first.idempotent and first.event_id == retry.event_id
    assert other_type.event_id != first.event_id
    assert deleted.event_id == idempotent_event_id("john.doe@mail.com", "k-1", SECRET)
    assert deleted.details == {}


def test_occurred_at_is_the_callers_moment_in_utc() -> None:
    moment = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))

    assert _invoice_voided(occurred_at=moment).occurred_at == "2025-01-02T01:04:05.000006Z"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"subject": ""}, "subject: must be 1 to 256 bytes in UTF-8", id="empty"),
        pytest.param(
            {"subject": "cus 4QFJ2a"},
            "subject: must not contain whitespace or control characters",
            id="space in identifier",
        ),
        pytest.param(
            {"subject": "jane@@example.com"},
            "subject: must be a valid email address",
            id="broken address",
        ),
        pytest.param({"subject": 42}, "subject: must be a string", id="not a string"),
        pytest.param(
            {"actor": "jane@example.com"}, "actor: must not contain @", id="address as actor"
        ),
        pytest.param({"actor": ""}, "actor: must be a string of 1 to 256 characters", id="actor"),
        pytest.param({"source": None}, "source: must be a string of 1 to 256", id="no source"),
        pytest.param(
            {"details": ["INV-1"]}, "details: must be a JSON object (a dict)", id="details list"
        ),
        pytest.param(
            {"details": {"n": float("nan")}},
            "details: must hold only JSON values",
            id="NaN in details",
        ),
        pytest.param(
            {"details": {"note": "x" * 8200}},
            "details: must be at most 8192 bytes as JSON",
            id="details too large",
        ),
        pytest.param(
            {"idempotency_key": "é"},
            "idempotency_key: must be a string of 1 to 128 printable ASCII characters",
            id="key",
        ),
        pytest.param(
            {"occurred_at": datetime(2025, 1, 1)},
            "occurred_at: must be timezone-aware",
            id="naive time",
        ),
    ],
)
def test_a_bad_field_is_refused_naming_the_field_and_rule_never_the_value(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidPayloadError) as raised:
        _invoice_voided(**overrides)

    assert str(raised.value).startswith(message)
    assert "jane" not in str(raised.value)


def test_account_deleted_events_are_about_an_address_and_carry_no_callers_details() -> None:
    with pytest.raises(InvalidPayloadError, match="subject: must be an e-mail address"):
        build_event("AccountDeleted", subject="cus_1", source="x", now=NOW, secret=SECRET)
    with pytest.raises(InvalidPayloadError, match="details: must be empty for AccountDeleted"):
        build_event(
            "AccountDeleted", subject="a@b.com", details={"x": 1}, source="x", now=NOW,
            secret=SECRET,
        )  # fmt: skip


def test_a_publication_outside_the_catalogue_is_refused_before_its_fields() -> None:
    with pytest.raises(InvalidPayloadError, match=r"^event_type: must be one of"):
        event_publication(
            "RefundIssued", subject="", source="billing", now=NOW, secret=SECRET,
            catalogue=CATALOGUE,
        )  # fmt: skip
    with pytest.raises(InvalidPayloadError, match=r"^details.amount_cents: must satisfy minimum"):
        event_publication(
            "InvoiceVoided", subject="cus_1", details={"invoice_id": "INV-1", "amount_cents": -1},
            source="billing", now=NOW, secret=SECRET, catalogue=CATALOGUE,
        )  # fmt: skip


def test_version_3_messages_with_oversized_details_or_a_bad_actor_are_poison() -> None:
    event = json.loads(_invoice_voided().to_json())
    changes: list[tuple[dict[str, Any], str]] = [
        ({"details": {"note": "x" * 8200}}, "details: must be at most 8192 bytes"),
        ({"actor": ""}, "actor: must be null or a string"),
        ({"subject_type": "nickname"}, "subject_type: must be one of"),
    ]
    for change, message in changes:
        with pytest.raises(PoisonMessageError, match=message):
            parse_audit_event(json.dumps({**event, **change}))


# --- the recorder -----------------------------------------------------------------------------


@pytest.fixture
def billing_topic(topic: MockTopic) -> MockTopic:
    """The topic's subscription filtered on the catalogue, as the construct writes it."""
    sns = boto3.client("sns")
    [subscription] = sns.list_subscriptions_by_topic(TopicArn=topic.topic_arn)["Subscriptions"]
    sns.set_subscription_attributes(
        SubscriptionArn=subscription["SubscriptionArn"],
        AttributeName="FilterPolicy",
        AttributeValue=json.dumps({"event_type": list(CATALOGUE.schemas)}),
    )
    return topic


@pytest.fixture
def catalogue_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.ENV_EVENT_CATALOGUE, catalogue_json(CATALOGUE.schemas))


def test_invoice_voided_travels_from_publication_to_the_table_with_its_actor(
    billing_topic: MockTopic,
    audit_table: str,
    pseudonym_secret: bytes,
    catalogue_environment: None,
    recorder: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    publication = event_publication(
        "InvoiceVoided",
        subject="cus_4QFJ2a",
        details={"invoice_id": "INV-1042", "reason": "duplicate"},
        actor="billing-ui",
        source="billing",
        now=NOW,
        secret=pseudonym_secret,
        catalogue=CATALOGUE,
    )
    boto3.client("sns").publish(
        TopicArn=billing_topic.topic_arn,
        Message=publication.message,
        MessageAttributes=publication.message_attributes,
    )
    messages = boto3.client("sqs").receive_message(
        QueueUrl=billing_topic.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]

    response = recorder.handler(
        sqs_event_from_received(messages, billing_topic.queue_arn), lambda_context
    )

    assert response == {"batchItemFailures": []}
    [item] = boto3.client("dynamodb").query(
        TableName=audit_table,
        KeyConditionExpression="subject = :subject",
        ExpressionAttributeValues={
            ":subject": {"S": pseudonymous_subject("cus_4QFJ2a", pseudonym_secret)}
        },
    )["Items"]
    assert item["event_type"] == {"S": "InvoiceVoided"}
    assert item[contract.ACTOR_ATTRIBUTE] == {"S": "billing-ui"}
    assert item["source"] == {"S": "billing"}
    assert item["schema_version"] == {"N": "3"}
    assert item["details"] == {"M": {"invoice_id": {"S": "INV-1042"}, "reason": {"S": "duplicate"}}}
    assert item["event_type_shard"]["S"].startswith("InvoiceVoided#")


def test_events_outside_the_catalogue_or_its_schema_are_poison_while_neighbours_are_recorded(
    audit_table: str,
    catalogue_environment: None,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    captured_logs: Any,
) -> None:
    good = _invoice_voided(secret=None)
    unknown = build_event("RefundIssued", subject="cus_1", source="billing", now=NOW, secret=None)
    off_schema = _invoice_voided(secret=None, details={"invoice_id": "jane@example.com"})
    batch = sqs_event(
        record_for(good),
        record_for(unknown, message_id="unknown-type"),
        record_for(off_schema, message_id="off-schema"),
    )

    response = recorder.handler(batch, lambda_context)

    assert response == {
        "batchItemFailures": [{"itemIdentifier": "unknown-type"}, {"itemIdentifier": "off-schema"}]
    }
    items = boto3.client("dynamodb").scan(TableName=audit_table)["Items"]
    assert [item["event_id"]["S"] for item in items] == [good.event_id]
    reasons = [e["reason"] for e in captured_logs.entries() if e["message"] == "Poison message"]
    assert reasons == [
        "event_type: must be one of this pipeline's event types (AccountDeleted, InvoiceVoided)",
        'details.invoice_id: must match "^INV-[0-9]+$"',
    ]
    assert "jane" not in captured_logs.text


def test_an_identifier_in_clear_reaching_a_pseudonymising_pipeline_is_recorded_by_pseudonym(
    audit_table: str,
    pseudonym_secret: bytes,
    recorder: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    event = _invoice_voided(secret=None)

    recorder.handler(sqs_event(record_for(event)), lambda_context)

    [item] = boto3.client("dynamodb").scan(TableName=audit_table)["Items"]
    assert item["subject"] == {"S": pseudonymous_subject("cus_4QFJ2a", pseudonym_secret)}
    assert item["subject_type"] == {"S": "hmac-sha256"}


def test_a_new_environments_first_batch_builds_one_dynamodb_client_for_all_its_writers(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clients = importlib.import_module("audit_events.clients")
    built: list[str] = []
    real_client = clients.boto3.client

    def counting_client(service: str, **kwargs: Any) -> Any:
        built.append(service)
        return real_client(service, **kwargs)

    monkeypatch.setattr(clients.boto3, "client", counting_client)
    events = [_invoice_voided(subject=f"cus_{index}", secret=None) for index in range(10)]

    response = recorder.handler(sqs_event(*map(record_for, events)), lambda_context)

    assert response == {"batchItemFailures": []}
    assert built.count("dynamodb") == 1
    assert len(boto3.client("dynamodb").scan(TableName=audit_table)["Items"]) == 10
