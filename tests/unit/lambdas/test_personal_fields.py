"""Personal data inside ``details``: fields an event type declares personal are recorded by the
keyed pseudonym (the subject's formula), and anything else that looks like an e-mail address is
refused at publish and is poison at the recorder, instead of being stored for good."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events.catalogue import (
    CatalogueError,
    EventCatalogue,
    EventRuleError,
    EventType,
    catalogue_json,
    catalogue_schemas,
    parse_catalogue,
)
from audit_events.contract import ENV_EVENT_CATALOGUE, PERSONAL_FIELDS_KEYWORD
from audit_events.event import InvalidPayloadError
from audit_events.publication import event_publication

from .builders import record_for, sqs_event

NOW = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
SECRET = b"personal fields secret"
TICKET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ticket_id": {"type": "string"},
        "reporter": {"type": "string", "format": "email"},
        "notes": {"type": "string"},
    },
    "required": ["ticket_id"],
    "additionalProperties": False,
}
CATALOGUE = parse_catalogue(
    catalogue_json(
        catalogue_schemas(
            [
                "AccountDeleted",
                EventType("TicketOpened", TICKET_SCHEMA, personal_fields=["reporter"]),
                EventType("NoteAdded", personal_fields=("author",)),
                "Untyped",
            ]
        )
    )
)


def _publish(event_type: str, details: dict[str, Any], secret: bytes | None = SECRET) -> Any:
    return event_publication(
        event_type,
        subject="cus_1",
        details=details,
        source="support",
        now=NOW,
        secret=secret,
        catalogue=CATALOGUE,
    ).event


def _documented_pseudonym(normalized: str) -> str:
    message = b"audit-pipeline/subject/v1\x00" + normalized.encode("utf-8")
    return hmac.new(SECRET, message, hashlib.sha256).hexdigest()


def test_a_declared_personal_field_is_recorded_by_the_subjects_keyed_pseudonym() -> None:
    event = _publish("TicketOpened", {"ticket_id": "T-1", "reporter": "Ada.Lovelace@Faß.de"})
    in_clear = _publish("TicketOpened", {"ticket_id": "T-1", "reporter": "Ada@Mail.Example"}, None)

    assert event.details == {
        "ticket_id": "T-1",
        "reporter": _documented_pseudonym("ada.lovelace@xn--fa-hia.de"),
    }
    # Not "ada": the event's random UUID and the pseudonyms are hex, which may spell it.
    assert "lovelace" not in event.to_json().lower()
    assert "fa-hia" not in event.to_json().lower()
    assert in_clear.details["reporter"] == "ada@mail.example"  # a clear pipeline: normalised
    # The recorder's check of the stored form passes (a pseudonym is no e-mail address).
    CATALOGUE.check("TicketOpened", event.details)


def test_personal_fields_without_a_schema_and_identifiers_are_pseudonymised_too() -> None:
    event = _publish("NoteAdded", {"author": "agent-7", "text": "called back"})

    assert event.details == {
        "author": _documented_pseudonym("agent-7"),
        "text": "called back",
    }
    assert CATALOGUE.personal_fields("NoteAdded") == ("author",)
    assert CATALOGUE.personal_fields("Untyped") == ()


@pytest.mark.parametrize(
    ("event_type", "details", "message"),
    [
        (
            "TicketOpened",
            {"ticket_id": "T-1", "notes": "reach me at grace.hopper@navy.example please"},
            "details.notes: must not hold an e-mail address unless the field is declared",
        ),
        (
            "NoteAdded",
            {"author": "a", "cc": [{"to": "grace.hopper@navy.example"}]},
            "details.cc[0].to: must not hold an e-mail address",
        ),
        ("Untyped", {"grace.hopper@navy.example": 1}, "details: must not hold an e-mail address"),
        ("Untyped", {"contact": "GRACE@NAVY.EXAMPLE"}, "details.contact: must not hold"),
    ],
)
def test_an_undeclared_field_that_looks_like_an_address_is_refused_at_publish_never_echoed(
    event_type: str, details: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidPayloadError) as raised:
        _publish(event_type, details)
    with pytest.raises(EventRuleError) as at_the_recorder:
        CATALOGUE.check(event_type, details)

    assert str(raised.value).startswith(message)
    assert str(at_the_recorder.value) == str(raised.value)
    assert "grace" not in str(raised.value).lower()


def test_without_a_catalogue_every_address_in_the_details_is_refused() -> None:
    with pytest.raises(InvalidPayloadError, match=r"^details\.who: must not hold an e-mail"):
        event_publication(
            "Anything",
            subject="cus_1",
            details={"who": "a@b.example"},
            source="s",
            now=NOW,
            secret=SECRET,
            catalogue=None,
        )


def test_a_personal_field_must_be_a_valid_subject_said_by_its_name() -> None:
    with pytest.raises(InvalidPayloadError) as not_a_string:
        _publish("NoteAdded", {"author": 7})
    with pytest.raises(InvalidPayloadError) as bad_domain:
        _publish("NoteAdded", {"author": "a@b\u3002example"})

    assert str(not_a_string.value) == "details.author: must be a string"
    assert str(bad_domain.value).startswith("details.author: the domain must separate its labels")


def test_the_declaration_travels_in_the_catalogue_text_and_bad_ones_are_refused() -> None:
    text = catalogue_json(catalogue_schemas([EventType("NoteAdded", personal_fields=["author"])]))

    assert json.loads(text) == {
        "NoteAdded": {"type": "object", PERSONAL_FIELDS_KEYWORD: ["author"]}
    }
    for bad in (["a", "a"], "author", [""], [1]):
        schema = {"type": "object", PERSONAL_FIELDS_KEYWORD: bad}
        with pytest.raises(CatalogueError, match="personal_fields must be distinct non-empty"):
            parse_catalogue(json.dumps({"NoteAdded": schema}))


def test_account_deleted_in_clear_keeps_its_own_email_detail() -> None:
    catalogue = EventCatalogue({"AccountDeleted": None})

    catalogue.check("AccountDeleted", {"email": "john.doe@mail.com"})


def test_the_construct_refuses_bad_personal_field_declarations_before_synthesis() -> None:
    # The construct's own EventType: the installed package's copy of the Lambda module.
    from audit_stack.construct.validation import event_type_problems
    from audit_stack.publisher import EventType as ConstructEventType

    problems = event_type_problems(
        [
            ConstructEventType("AccountDeleted", personal_fields=["email"]),
            ConstructEventType("NoteAdded", personal_fields="author"),
            ConstructEventType("TicketOpened", personal_fields=["reporter", "reporter"]),
            ConstructEventType("Fine", personal_fields=["reporter"]),
        ]
    )

    assert problems == [
        "'AccountDeleted' takes no personal_fields: its details are the pipeline's own "
        "(deleteAccount's)",
        "'NoteAdded': personal_fields must be a list of distinct non-empty field names "
        "(top-level details fields)",
        "'TicketOpened': personal_fields must be a list of distinct non-empty field names "
        "(top-level details fields)",
    ]


def test_an_undeclared_address_reaching_the_recorder_is_poison_and_never_stored_or_logged(
    audit_table: str,
    monkeypatch: pytest.MonkeyPatch,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    captured_logs: Any,
) -> None:
    monkeypatch.setenv(ENV_EVENT_CATALOGUE, CATALOGUE.to_json())
    declared = _publish("TicketOpened", {"ticket_id": "T-1", "reporter": "ada@mail.example"})
    # Straight to the topic, past the client's checks (a producer without the client).
    undeclared = replace(
        declared,
        event_id=str(uuid.uuid4()),
        details={"ticket_id": "T-2", "notes": "from grace.hopper@navy.example"},
    )

    response = recorder.handler(
        sqs_event(record_for(declared), record_for(undeclared, message_id="undeclared")),
        lambda_context,
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": "undeclared"}]}
    items = boto3.client("dynamodb").scan(TableName=audit_table)["Items"]
    assert [item["event_id"]["S"] for item in items] == [declared.event_id]
    reasons = [e["reason"] for e in captured_logs.entries() if e["message"] == "Poison message"]
    assert [reason.split(":")[0] for reason in reasons] == ["details.notes"]
    assert "grace" not in captured_logs.text and "ada@" not in json.dumps(items)


def test_a_clear_producers_personal_fields_are_pseudonymised_by_the_recorder(
    audit_table: str,
    monkeypatch: pytest.MonkeyPatch,
    pseudonym_secret: bytes,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    captured_logs: Any,
) -> None:
    monkeypatch.setenv(ENV_EVENT_CATALOGUE, CATALOGUE.to_json())
    # A producer without the secret (another account) normalises but cannot pseudonymise.
    clear = _publish("TicketOpened", {"ticket_id": "T-1", "reporter": "Ada@Mail.Example"}, None)
    bad = replace(
        clear, event_id=str(uuid.uuid4()), details={"ticket_id": "T-2", "reporter": "a@b\u3002cd"}
    )

    response = recorder.handler(
        sqs_event(record_for(clear), record_for(bad, message_id="bad")), lambda_context
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    (item,) = boto3.client("dynamodb").scan(TableName=audit_table)["Items"]
    expected = hmac.new(
        pseudonym_secret, b"audit-pipeline/subject/v1\x00ada@mail.example", hashlib.sha256
    ).hexdigest()
    assert item["details"]["M"]["reporter"] == {"S": expected}
    assert "ada@" not in json.dumps(item)
    reasons = [e["reason"] for e in captured_logs.entries() if e["message"] == "Poison message"]
    assert [reason.split(":")[0] for reason in reasons] == ["details.reporter"]
