"""Properties over arbitrary input: the parsers fail only with their documented errors."""

from __future__ import annotations

import contextlib
import json
import string
from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from audit_events.event import (
    EVENT_FIELDS,
    InvalidPayloadError,
    PoisonMessageError,
    new_account_deleted,
    parse_audit_event,
    parse_sns_envelope,
    validate_delete_account_payload,
)

from .builders import account_deleted, sns_notification

# Enough examples to hit every rule, few enough to keep the unit suite at a few seconds.
FEW = settings(max_examples=50, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Objects shaped like an audit event, each field valid, absent or arbitrary, plus strays.
event_like_objects = st.builds(
    lambda valid, replacements, removed, extra: {
        **{name: value for name, value in valid.items() if name not in removed},
        **replacements,
        **extra,
    },
    st.builds(lambda: json.loads(account_deleted().to_json())),
    st.dictionaries(st.sampled_from(EVENT_FIELDS), json_values, max_size=3),
    st.sets(st.sampled_from(EVENT_FIELDS), max_size=2),
    st.dictionaries(st.text(max_size=8), json_values, max_size=1),
)


@FEW
@given(st.text() | st.builds(json.dumps, json_values | event_like_objects))
@example("[" * 5000)
@example('{"schema_version": 1e400}')
@example('{"a": 1, "a": 2}')
def test_parse_audit_event_fails_only_with_poison_message_error(message: str) -> None:
    try:
        event = parse_audit_event(message)
    except PoisonMessageError as error:
        assert str(error).split(": ", 1)[0] in {*EVENT_FIELDS, "message"}
    else:
        # Whatever is accepted is a valid event: it round-trips through the published form.
        assert parse_audit_event(event.to_json()) == event


@FEW
@given(st.text() | st.builds(json.dumps, json_values))
def test_parse_sns_envelope_fails_only_with_poison_message_error(body: str) -> None:
    with contextlib.suppress(PoisonMessageError):
        parse_sns_envelope(body)


@FEW
@given(st.builds(json.dumps, event_like_objects))
def test_any_message_in_a_valid_envelope_fails_only_with_poison_message_error(
    message: str,
) -> None:
    with contextlib.suppress(PoisonMessageError):
        parse_sns_envelope(sns_notification(message))


@FEW
@given(
    json_values
    | st.fixed_dictionaries({"email": json_values})
    | st.fixed_dictionaries({"email": st.text(max_size=300)})
    | st.fixed_dictionaries({"email": st.emails()})
)
def test_payload_validation_fails_only_with_invalid_payload_error(payload: Any) -> None:
    try:
        email = validate_delete_account_payload(payload)
    except InvalidPayloadError as error:
        assert str(error).split(": ", 1)[0] in {"payload", "email"}
    else:
        assert email == payload["email"]


plausible_emails = st.builds(
    "{}@{}.{}".format,
    st.text(string.ascii_letters + string.digits + "._%+-", min_size=1, max_size=64),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)


@FEW
@given(plausible_emails, st.datetimes(timezones=st.just(UTC)), st.uuids(version=4))
def test_every_accepted_email_makes_an_event_that_parses_back(
    email: str, now: datetime, event_id: Any
) -> None:
    validated = validate_delete_account_payload({"email": email})
    event = new_account_deleted(validated, now=now, event_id=str(event_id))

    assert parse_audit_event(event.to_json()) == event
