"""The audit event schema: payload validation, event construction and strict parsing."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from audit_events.contract import ACCOUNT_DELETED, SCHEMA_VERSION
from audit_events.event import (
    AuditEvent,
    InvalidPayloadError,
    PoisonMessageError,
    SnsProvenance,
    build_account_deleted_event,
    format_timestamp,
    new_account_deleted,
    parse_audit_event,
    parse_sns_envelope,
    pseudonymize,
    validate_delete_account_payload,
)
from audit_events.subject import idempotent_event_id, normalize_email, pseudonymous_subject

from .builders import EMAIL, TOPIC_ARN, account_deleted, sns_notification

REAL_SQS_EVENT = Path(__file__).parent / "data" / "sqs_event_with_sns_notification.json"
EVENT_ID = "9f1c2b4e-3d5a-4c8e-9b7f-2a6d1e0c5b3a"
NOW = datetime(2025, 3, 14, 9, 26, 53, 412907, tzinfo=UTC)

# --- deleteAccount payload -------------------------------------------------------------------


def test_original_payload_is_accepted() -> None:
    assert validate_delete_account_payload({"email": "john.doe@mail.com"}) == "john.doe@mail.com"


def test_longest_allowed_email_is_accepted() -> None:
    email = "l" * 64 + "@" + "d" * 63 + "." + "d" * 63 + "." + "d" * 57 + ".com"
    assert len(email) == 254

    assert validate_delete_account_payload({"email": email}) == email


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(None, "payload: must be a JSON object", id="null payload"),
        pytest.param([EMAIL], "payload: must be a JSON object", id="list payload"),
        pytest.param(EMAIL, "payload: must be a JSON object", id="string payload"),
        pytest.param({}, 'payload: missing required field "email"', id="empty object"),
        pytest.param(
            {"email": EMAIL, "name": "John"},
            'payload: unexpected field(s) "name"',
            id="extra field",
        ),
        pytest.param(
            {"Email": EMAIL},
            'payload: missing required field "email"; unexpected field(s) "Email"',
            id="misspelt field",
        ),
        pytest.param(
            {"mail": EMAIL},
            'payload: missing required field "email"; unexpected field(s) "mail"',
            id="misspelt mail",
        ),
        pytest.param(
            {"email": EMAIL, EMAIL: 1},
            "payload: unexpected field(s) (a name that looks like an e-mail address)",
            id="address as a field name",
        ),
        pytest.param(
            {"email": EMAIL, "idempotency_key": "x" * 129},
            "idempotency_key: must be a string of 1 to 128 printable ASCII characters",
            id="129-character idempotency key",
        ),
        pytest.param(
            {"email": EMAIL, "idempotency_key": "req\n1"},
            "idempotency_key: must be a string of 1 to 128 printable ASCII characters",
            id="idempotency key with a newline",
        ),
        pytest.param(
            {"email": EMAIL, "idempotency_key": 7},
            "idempotency_key: must be a string of 1 to 128 printable ASCII characters",
            id="number idempotency key",
        ),
        pytest.param({"email": None}, "email: must be a string", id="null email"),
        pytest.param({"email": 42}, "email: must be a string", id="number email"),
        pytest.param({"email": True}, "email: must be a string", id="boolean email"),
        pytest.param({"email": [EMAIL]}, "email: must be a string", id="list email"),
        pytest.param(
            {"email": "j" * 64 + "@" + "m" * 186 + ".com"},
            "email: must be at most 254 bytes in UTF-8",
            id="255 characters",
        ),
        pytest.param(
            {"email": "é" * 32 + "@" + "d" * 63 + "." + "d" * 63 + "." + "d" * 58 + ".com"},
            "email: must be at most 254 bytes in UTF-8",
            id="223 characters but 255 bytes",
        ),
        pytest.param(
            {"email": "j@" + ".".join(["a" * 55 + "ü"] * 4) + ".com"},
            "email: must be at most 254 bytes with its domain in punycode",
            id="short in UTF-8, long in punycode",
        ),
        pytest.param(
            {"email": "john.doe@xn--a.com"},
            "email: the domain is not a valid internationalised domain name (IDNA 2008)",
            id="invalid punycode label",
        ),
        pytest.param(
            {"email": "john.doe@m\u00e4il\u2ff0.com"},
            "email: the domain is not a valid internationalised domain name (IDNA 2008)",
            id="unassigned code point in an IDN label",
        ),
    ],
)
def test_invalid_payload_is_rejected_naming_field_and_rule(payload: object, message: str) -> None:
    with pytest.raises(InvalidPayloadError) as raised:
        validate_delete_account_payload(payload)

    assert str(raised.value) == message


@pytest.mark.parametrize(
    "email",
    [
        " john.doe@mail.com",
        "john.doe@mail.com ",
        "john.doe@mail.com\n",
        "john doe@mail.com",
        "john\tdoe@mail.com",
        "john\x00doe@mail.com",
        "john\u200bdoe@mail.com",
        "john.doe@mail\u00a0.com",
    ],
    ids=repr,
)
def test_email_with_whitespace_or_control_characters_is_rejected_not_stripped(email: str) -> None:
    with pytest.raises(InvalidPayloadError) as raised:
        validate_delete_account_payload({"email": email})

    assert str(raised.value) == "email: must not contain whitespace or control characters"


@pytest.mark.parametrize(
    "email",
    [
        "",
        "john.doe",
        "john.doe@",
        "@mail.com",
        "john@doe@mail.com",
        "john.doe@mail",
        "john.doe@.mail.com",
        "john.doe@mail.com.",
        "john.doe@mail..com",
        "john.doe@-mail.com",
        "john.doe@mail-.com",
        "john.doe@mail_box.com",
        "j" * 65 + "@mail.com",
        "é" * 33 + "@mail.com",  # 33 characters, 66 bytes
    ],
    ids=repr,
)
def test_implausible_email_is_rejected(email: str) -> None:
    with pytest.raises(InvalidPayloadError) as raised:
        validate_delete_account_payload({"email": email})

    assert str(raised.value) == "email: must be a valid email address"


@pytest.mark.parametrize(
    ("email", "normalized"),
    [
        ("jürgen@bücher.example", "jürgen@xn--bcher-kva.example"),
        ("Jürgen@BÜCHER.example", "jürgen@xn--bcher-kva.example"),
        ("Jürgen@xn--bcher-kva.example", "jürgen@xn--bcher-kva.example"),
        ("John.Doe@Mail.COM", "john.doe@mail.com"),
    ],
)
def test_idn_domains_are_accepted_and_normalised_to_punycode(email: str, normalized: str) -> None:
    assert validate_delete_account_payload({"email": email}) == email
    assert normalize_email(email) == normalized


def test_one_account_has_one_pseudonym_whatever_the_spelling_of_its_domain() -> None:
    secret = b"s" * 32
    spellings = ["jürgen@bücher.example", "JÜRGEN@Bücher.Example", "jürgen@xn--bcher-kva.example"]
    events = [
        new_account_deleted(email, now=NOW, event_id=EVENT_ID, secret=secret) for email in spellings
    ]

    assert {event.subject for event in events} == {
        pseudonymous_subject("jürgen@xn--bcher-kva.example", secret)
    }
    assert all(event.details == {} and event.subject_type == "hmac-sha256" for event in events)


def test_pseudonyms_differ_by_secret_and_reveal_nothing() -> None:
    first = pseudonymous_subject(EMAIL, b"first secret")
    second = pseudonymous_subject(EMAIL, b"second secret")

    assert first != second
    assert len(first) == 64 and int(first, 16) >= 0
    assert "john" not in first


def test_idempotent_event_id_is_stable_per_key_and_address() -> None:
    secret = b"s" * 32
    first = idempotent_event_id(EMAIL, "req-1", secret)

    assert idempotent_event_id(EMAIL, "req-1", secret) == first
    assert idempotent_event_id(EMAIL, "req-2", secret) != first
    assert idempotent_event_id("jane.roe@mail.com", "req-1", secret) != first
    assert idempotent_event_id(EMAIL, "req-1", b"rotated") != first
    assert first[14] == "8"  # UUID version 8


def test_building_from_a_payload_with_a_key_gives_retries_one_event_key_id() -> None:
    payload = {"email": EMAIL, "idempotency_key": "req-1"}
    first = build_account_deleted_event(payload, secret=b"s" * 32, now=NOW)
    retry = build_account_deleted_event(payload, secret=b"s" * 32, now=NOW + timedelta(hours=3))

    assert first.event_id == retry.event_id
    assert first.idempotent and retry.idempotent
    assert parse_audit_event(retry.to_json()) == retry


def test_pseudonymize_turns_a_version_1_event_into_one_without_the_address() -> None:
    v1 = replace(new_account_deleted(EMAIL, now=NOW, event_id=EVENT_ID), schema_version=1)

    converted = pseudonymize(v1, b"s" * 32)

    assert converted.subject == pseudonymous_subject(EMAIL, b"s" * 32)
    assert converted.details == {}
    assert converted.schema_version == 1
    assert converted.event_key == v1.event_key
    assert pseudonymize(converted, b"s" * 32) == converted
    not_an_address = replace(v1, subject="user-4711", details={})
    assert pseudonymize(not_an_address, b"s" * 32) == not_an_address


def test_rejection_never_repeats_the_email() -> None:
    for email in ("john.doe@mail", " john.doe@mail.com", "john.doe" * 40 + "@mail.com"):
        with pytest.raises(InvalidPayloadError) as raised:
            validate_delete_account_payload({"email": email})
        assert "john" not in str(raised.value)
        assert "mail." not in str(raised.value)


# --- building an AccountDeleted event --------------------------------------------------------


def test_account_deleted_event_is_about_the_lower_cased_email() -> None:
    event = new_account_deleted("John.Doe@Mail.com", now=NOW, event_id=EVENT_ID)

    assert event == AuditEvent(
        schema_version=SCHEMA_VERSION,
        event_id=EVENT_ID,
        event_type=ACCOUNT_DELETED,
        occurred_at="2025-03-14T09:26:53.412907Z",
        subject="john.doe@mail.com",
        source="deleteAccount",
        details={"email": "John.Doe@Mail.com"},
        subject_type="email",
        idempotent=False,
    )
    assert event.event_key == f"2025-03-14T09:26:53.412907Z#{EVENT_ID}"


def test_event_id_must_be_a_lowercase_uuid4() -> None:
    with pytest.raises(
        ValueError, match=r"event_id: must be a lowercase UUID4 \(or UUID8\) string"
    ):
        new_account_deleted(EMAIL, now=NOW, event_id=EVENT_ID.upper())


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2025, 3, 14, 9, 26, 53, 412907, tzinfo=UTC), "2025-03-14T09:26:53.412907Z"),
        (datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC), "2025-03-14T09:26:53.000000Z"),
        (
            datetime(2025, 3, 14, 11, 26, 53, 5, tzinfo=timezone(timedelta(hours=2))),
            "2025-03-14T09:26:53.000005Z",
        ),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05.000000Z"),
    ],
)
def test_timestamps_are_fixed_width_utc(moment: datetime, text: str) -> None:
    assert format_timestamp(moment) == text


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2025, 3, 14, 9, 26, 53))


def test_event_keys_sort_in_time_order() -> None:
    moments = [NOW + timedelta(microseconds=step * 999_999) for step in (5, 0, 12, 1, 100)]
    events = [new_account_deleted(EMAIL, now=moment, event_id=EVENT_ID) for moment in moments]

    by_key = sorted(events, key=lambda event: event.event_key)

    assert [event.occurred_at for event in by_key] == [
        format_timestamp(moment) for moment in sorted(moments)
    ]


def test_published_json_is_compact_with_sorted_keys() -> None:
    event = new_account_deleted(EMAIL, now=NOW, event_id=EVENT_ID)

    assert event.to_json() == (
        '{"actor":null,"details":{"email":"john.doe@mail.com"},'
        f'"event_id":"{EVENT_ID}","event_type":"AccountDeleted",'
        '"idempotent":false,"occurred_at":"2025-03-14T09:26:53.412907Z","schema_version":3,'
        '"source":"deleteAccount","subject":"john.doe@mail.com","subject_type":"email"}'
    )


def test_version_1_events_keep_version_1_fields_and_parse_back() -> None:
    v1 = replace(new_account_deleted(EMAIL, now=NOW, event_id=EVENT_ID), schema_version=1)

    assert v1.to_json() == (
        '{"details":{"email":"john.doe@mail.com"},'
        f'"event_id":"{EVENT_ID}","event_type":"AccountDeleted",'
        '"occurred_at":"2025-03-14T09:26:53.412907Z","schema_version":1,'
        '"source":"deleteAccount","subject":"john.doe@mail.com"}'
    )
    assert parse_audit_event(v1.to_json()) == v1


def test_published_json_parses_back_to_the_same_event() -> None:
    event = account_deleted("Jane.Roe+audit@example.co.uk")

    assert parse_audit_event(event.to_json()) == event


# --- parsing a published message -------------------------------------------------------------


_MISSING = object()


def _message(**changes: Any) -> str:
    document: dict[str, Any] = json.loads(account_deleted().to_json())
    for name, value in changes.items():
        if value is _MISSING:
            del document[name]
        else:
            document[name] = value
    return json.dumps(document)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        pytest.param("", "message: must be valid JSON", id="empty"),
        pytest.param("account deleted", "message: must be valid JSON", id="not JSON"),
        pytest.param('{"event_id": ', "message: must be valid JSON", id="truncated"),
        pytest.param("[1]", "message: must be a JSON object", id="array"),
        pytest.param('"text"', "message: must be a JSON object", id="string"),
        pytest.param(
            _message(details={"amount": float("nan")}),
            "message: must be valid JSON",
            id="NaN",
        ),
        pytest.param(
            '{"subject": "a", "subject": "b"}',
            "message: must not repeat a field name",
            id="duplicate field",
        ),
        *[
            pytest.param(_message(**{name: _MISSING}), f"{name}: is required", id=f"no {name}")
            for name in (
                "schema_version",
                "event_id",
                "event_type",
                "occurred_at",
                "subject",
                "source",
                "details",
                "subject_type",
                "idempotent",
            )
        ],
        pytest.param(
            _message(email="john.doe@mail.com"),
            "message: unexpected field(s): email",
            id="extra field",
        ),
        pytest.param(
            _message(schema_version=4),
            "schema_version: must be 1, 2 or 3, the versions understood",
            id="unknown schema version",
        ),
        pytest.param(
            _message(schema_version="1"),
            "schema_version: must be 1, 2 or 3, the versions understood",
            id="string schema version",
        ),
        pytest.param(
            _message(schema_version=True),
            "schema_version: must be 1, 2 or 3, the versions understood",
            id="boolean schema version",
        ),
        pytest.param(
            _message(schema_version=1.0),
            "schema_version: must be 1, 2 or 3, the versions understood",
            id="float schema version",
        ),
        pytest.param(_message(event_id=7), "event_id: must be a string", id="number event_id"),
        *[
            pytest.param(
                _message(event_id=event_id),
                "event_id: must be a lowercase UUID string",
                id=f"event_id {event_id!r}",
            )
            for event_id in (
                EVENT_ID.upper(),
                "6ba7b810-9dad-11d1-80b4-00c04fd430c8",  # a UUID1
                EVENT_ID.replace("-", ""),
                "{" + EVENT_ID + "}",
                EVENT_ID + "\n",
            )
        ],
        *[
            pytest.param(
                _message(event_type=event_type),
                "event_type: must match ^[A-Z][A-Za-z0-9]{0,63}$",
                id=f"event_type {event_type!r}",
            )
            for event_type in (
                "",
                "accountDeleted",
                "Account-Deleted",
                "Account Deleted",
                "A" * 65,
                "AccountDeleted\n",
                "Account\u0434eleted",
            )
        ],
        *[
            pytest.param(
                _message(occurred_at=occurred_at),
                "occurred_at: must be a UTC timestamp like 2024-01-31T23:59:59.123456Z",
                id=f"occurred_at {occurred_at!r}",
            )
            for occurred_at in (
                "2025-03-14T09:26:53Z",
                "2025-03-14T09:26:53.412Z",
                "2025-03-14T09:26:53.412907",
                "2025-03-14T09:26:53.412907+00:00",
                "2025-03-14 09:26:53.412907Z",
                "2025-13-14T09:26:53.412907Z",
                "2025-02-30T09:26:53.412907Z",
                "2025-03-14T24:00:00.000000Z",
                "\uff12025-03-14T09:26:53.412907Z",
                "1741944413",
            )
        ],
        pytest.param(_message(subject=None), "subject: must be a string", id="null subject"),
        pytest.param(
            _message(subject=""), "subject: must be 1 to 1024 characters", id="empty subject"
        ),
        pytest.param(
            _message(subject="s" * 1025),
            "subject: must be 1 to 1024 characters",
            id="long subject",
        ),
        pytest.param(_message(source=""), "source: must be 1 to 256 characters", id="no source"),
        pytest.param(_message(details=None), "details: must be a JSON object", id="null details"),
        pytest.param(_message(details=[1]), "details: must be a JSON object", id="list details"),
        pytest.param(_message(details="x"), "details: must be a JSON object", id="text details"),
    ],
)
def test_malformed_message_is_poison_naming_field_and_rule(message: str, error: str) -> None:
    with pytest.raises(PoisonMessageError) as raised:
        parse_audit_event(message)

    assert str(raised.value) == error


def test_deeply_nested_message_is_poison_not_a_crash() -> None:
    with pytest.raises(PoisonMessageError, match="message: must be valid JSON"):
        parse_audit_event("[" * 100_000 + "]" * 100_000)


def test_poison_reasons_never_repeat_personal_data() -> None:
    for message in (_message(subject=""), _message(event_id="john.doe@mail.com")):
        with pytest.raises(PoisonMessageError) as raised:
            parse_audit_event(message)
        assert "john" not in str(raised.value)


def test_longest_subject_is_accepted() -> None:
    assert parse_audit_event(_message(subject="s" * 1024)).subject == "s" * 1024


# --- parsing the SNS envelope ----------------------------------------------------------------


def test_real_sns_envelope_from_sqs_yields_event_and_provenance() -> None:
    record = json.loads(REAL_SQS_EVENT.read_text())["Records"][0]
    # As SQS delivers it: SNS's pretty-printed JSON, not the bare message.
    assert record["body"].startswith('{\n  "Type" : "Notification",\n  "MessageId" : ')

    event, provenance = parse_sns_envelope(record["body"])

    assert event == AuditEvent(
        schema_version=1,
        event_id=EVENT_ID,
        event_type="AccountDeleted",
        occurred_at="2025-03-14T09:26:53.412907Z",
        subject="john.doe@mail.com",
        source="deleteAccount",
        details={"email": "john.doe@mail.com"},
    )
    assert provenance == SnsProvenance(
        sns_message_id="d3b5a6c2-8f1e-5b4a-9c7d-0e2f4a6b8c1d",
        topic_arn=TOPIC_ARN,
        sns_timestamp="2025-03-14T09:26:53.589Z",
    )


def test_test_envelopes_have_the_layout_of_the_real_one() -> None:
    real_body = json.loads(REAL_SQS_EVENT.read_text())["Records"][0]["body"]
    built_body = sns_notification("{}")

    def layout(body: str) -> list[str]:
        return [line.split('" : ')[0] for line in body.splitlines()]

    assert layout(built_body) == layout(real_body)


def _envelope(**changes: Any) -> str:
    document: dict[str, Any] = json.loads(sns_notification(account_deleted().to_json()))
    for name, value in changes.items():
        if value is _MISSING:
            del document[name]
        else:
            document[name] = value
    return json.dumps(document)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param("not json", "body: must be valid JSON", id="not JSON"),
        pytest.param("[]", "body: must be a JSON object", id="array"),
        pytest.param(account_deleted().to_json(), 'Type: must be "Notification"', id="raw"),
        pytest.param(
            _envelope(Type="SubscriptionConfirmation"),
            'Type: must be "Notification"',
            id="subscription confirmation",
        ),
        pytest.param(_envelope(Type=_MISSING), 'Type: must be "Notification"', id="no Type"),
        *[
            pytest.param(
                _envelope(**{name: value}),
                f"{name}: must be a non-empty string",
                # No object address in an id: pytest-xdist workers must collect the same ids.
                id=f"{name} {'missing' if value is _MISSING else repr(value)}",
            )
            for name in ("Message", "MessageId", "TopicArn", "Timestamp")
            for value in (_MISSING, None, 42, "")
        ],
        pytest.param(
            _envelope(Message={"subject": "x"}),
            "Message: must be a non-empty string",
            id="Message as object",
        ),
        pytest.param(
            _envelope(Message="account deleted"),
            "message: must be valid JSON",
            id="Message not JSON",
        ),
        pytest.param(
            _envelope(Message=_message(schema_version=4)),
            "schema_version: must be 1, 2 or 3, the versions understood",
            id="unknown schema version",
        ),
    ],
)
def test_malformed_envelope_is_poison_naming_field_and_rule(body: str, error: str) -> None:
    with pytest.raises(PoisonMessageError) as raised:
        parse_sns_envelope(body)

    assert str(raised.value) == error
