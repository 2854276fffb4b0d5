"""The audit event schema: building, validating and strictly parsing audit events (no AWS calls).

Delivery format: the topic's SQS subscription keeps raw message delivery OFF, so each SQS
message body is SNS's JSON notification envelope and the audit event is the envelope's
``Message``. The envelope costs a few hundred bytes per message and carries provenance that raw
delivery would drop: SNS's MessageId (recorded with each event) and the topic and time of
publication. The envelope's signature is not checked here: who may send to the queue is decided
by the queue policy, not by the recorder.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

SCHEMA_VERSION = 1
ACCOUNT_DELETED = "AccountDeleted"
DELETE_ACCOUNT_SOURCE = "deleteAccount"

EVENT_FIELDS = (
    "schema_version",
    "event_id",
    "event_type",
    "occurred_at",
    "subject",
    "source",
    "details",
)
EVENT_TYPE_PATTERN = "^[A-Z][A-Za-z0-9]{0,63}$"
TIMESTAMP_EXAMPLE = "2024-01-31T23:59:59.123456Z"
MAX_EMAIL_LENGTH = 254  # RFC 5321's 256-octet path minus its angle brackets
MAX_EMAIL_LOCAL_PART_LENGTH = 64  # RFC 5321
MAX_SUBJECT_LENGTH = 1024
MAX_SOURCE_LENGTH = 256

# Patterns are used with fullmatch (a "$" would also accept a trailing newline) and spell out
# [0-9] because \d matches non-ASCII digits, which would break the lexicographic time order.
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_EVENT_TYPE = re.compile(EVENT_TYPE_PATTERN.removeprefix("^").removesuffix("$"))
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_ENVELOPE_STRING_FIELDS = ("Message", "MessageId", "TopicArn", "Timestamp")
# Field names in error messages come from the sender: bound how much of them is echoed.
_MAX_NAMES_SHOWN = 10
_MAX_NAME_LENGTH = 64


class InvalidPayloadError(ValueError):
    """A deleteAccount payload broke a rule; the message names the field and the rule only."""


class PoisonMessageError(ValueError):
    """A queued message that can never be recorded; the message names the field and the rule."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit event, as published to the topic and recorded in the table."""

    schema_version: int
    event_id: str
    event_type: str
    occurred_at: str
    subject: str
    source: str
    details: dict[str, Any]

    @property
    def event_key(self) -> str:
        """The table's sort key: a subject's events sort by time, the id keeps keys unique."""
        return f"{self.occurred_at}#{self.event_id}"

    def to_json(self) -> str:
        """The published form: compact with sorted keys, so an event has exactly one text."""
        return json.dumps(
            {
                "schema_version": self.schema_version,
                "event_id": self.event_id,
                "event_type": self.event_type,
                "occurred_at": self.occurred_at,
                "subject": self.subject,
                "source": self.source,
                "details": self.details,
            },
            separators=(",", ":"),
            sort_keys=True,
            allow_nan=False,
        )


class SnsProvenance(NamedTuple):
    """The SNS notification that delivered an event."""

    sns_message_id: str
    topic_arn: str
    sns_timestamp: str


def format_timestamp(moment: datetime) -> str:
    """``moment`` as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, fixed width: text order is time order."""
    if moment.utcoffset() is None:
        raise ValueError("timestamp: must be timezone-aware")
    # isoformat, unlike strftime on Linux, zero-pads years before 1000.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def validate_delete_account_payload(payload: object) -> str:
    """The e-mail of a deleteAccount payload ``{"email": "john.doe@mail.com"}``.

    Raises InvalidPayloadError naming the field and the rule; the rejected value is never part
    of the message because it is personal data.
    """
    if not isinstance(payload, dict):
        raise InvalidPayloadError("payload: must be a JSON object")
    unexpected = [name for name in payload if name != "email"]
    if unexpected:
        raise InvalidPayloadError(f"payload: unexpected field(s): {_names(unexpected)}")
    if "email" not in payload:
        raise InvalidPayloadError("email: is required")
    email = payload["email"]
    if not isinstance(email, str):
        raise InvalidPayloadError("email: must be a string")
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidPayloadError(f"email: must be at most {MAX_EMAIL_LENGTH} characters")
    # Rejected rather than stripped: the caller should learn that it sends padded values.
    if any(_is_space_or_control(char) for char in email):
        raise InvalidPayloadError("email: must not contain whitespace or control characters")
    if not _is_plausible_email(email):
        raise InvalidPayloadError("email: must be a valid email address")
    return email


def new_account_deleted(email: str, *, now: datetime, event_id: str) -> AuditEvent:
    """The AccountDeleted event for a validated deleteAccount e-mail."""
    if not _EVENT_ID.fullmatch(event_id):
        raise ValueError("event_id: must be a lowercase UUID4 string")
    return AuditEvent(
        schema_version=SCHEMA_VERSION,
        event_id=event_id,
        event_type=ACCOUNT_DELETED,
        occurred_at=format_timestamp(now),
        # E-mail addresses are matched case-insensitively in practice: one subject per account.
        subject=email.lower(),
        source=DELETE_ACCOUNT_SOURCE,
        details={"email": email},
    )


def parse_audit_event(message: str) -> AuditEvent:
    """The audit event in a published message; PoisonMessageError if any rule is broken."""
    document = _load_json_object(message, "message")
    missing = [name for name in EVENT_FIELDS if name not in document]
    if missing:
        raise _poison(missing[0], "is required")
    unexpected = [name for name in document if name not in EVENT_FIELDS]
    if unexpected:
        raise _poison("message", f"unexpected field(s): {_names(unexpected)}")

    schema_version = document["schema_version"]
    # type() rather than isinstance(): bool is an int, and true must not pass for version 1.
    if type(schema_version) is not int or schema_version != SCHEMA_VERSION:
        raise _poison("schema_version", f"must be {SCHEMA_VERSION}, the only version understood")
    event_id = _string(document, "event_id")
    if not _EVENT_ID.fullmatch(event_id):
        raise _poison("event_id", "must be a lowercase UUID4 string")
    event_type = _string(document, "event_type")
    if not _EVENT_TYPE.fullmatch(event_type):
        raise _poison("event_type", f"must match {EVENT_TYPE_PATTERN}")
    occurred_at = _string(document, "occurred_at")
    if not _is_timestamp(occurred_at):
        raise _poison("occurred_at", f"must be a UTC timestamp like {TIMESTAMP_EXAMPLE}")
    subject = _string(document, "subject")
    if not 1 <= len(subject) <= MAX_SUBJECT_LENGTH:
        raise _poison("subject", f"must be 1 to {MAX_SUBJECT_LENGTH} characters")
    source = _string(document, "source")
    if not 1 <= len(source) <= MAX_SOURCE_LENGTH:
        raise _poison("source", f"must be 1 to {MAX_SOURCE_LENGTH} characters")
    details = document["details"]
    if not isinstance(details, dict):
        raise _poison("details", "must be a JSON object")
    return AuditEvent(
        schema_version=schema_version,
        event_id=event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        subject=subject,
        source=source,
        details=details,
    )


def parse_sns_envelope(body: str) -> tuple[AuditEvent, SnsProvenance]:
    """The audit event in an SQS message body (an SNS notification) and where it came from."""
    envelope = _load_json_object(body, "body")
    if envelope.get("Type") != "Notification":
        raise _poison("Type", 'must be "Notification"')
    for name in _ENVELOPE_STRING_FIELDS:
        value = envelope.get(name)
        if not isinstance(value, str) or not value:
            raise _poison(name, "must be a non-empty string")
    event = parse_audit_event(envelope["Message"])
    return event, SnsProvenance(
        sns_message_id=envelope["MessageId"],
        topic_arn=envelope["TopicArn"],
        sns_timestamp=envelope["Timestamp"],
    )


class _DuplicateFieldError(ValueError):
    pass


def _load_json_object(text: str, name: str) -> dict[str, Any]:
    try:
        document = json.loads(
            text, object_pairs_hook=_reject_duplicate_fields, parse_constant=_reject_constant
        )
    except _DuplicateFieldError:
        # Which of two values would count is parser-dependent; an audit record must not guess.
        raise _poison(name, "must not repeat a field name") from None
    except (TypeError, ValueError, RecursionError):
        # RecursionError: deeply nested input exhausts the parser's stack.
        raise _poison(name, "must be valid JSON") from None
    if not isinstance(document, dict):
        raise _poison(name, "must be a JSON object")
    return document


def _reject_duplicate_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _DuplicateFieldError
    return document


def _reject_constant(constant: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not, and neither does DynamoDB.
    raise ValueError(f"{constant} is not JSON")


def _string(document: dict[str, Any], name: str) -> str:
    value = document[name]
    if not isinstance(value, str):
        raise _poison(name, "must be a string")
    return value


def _is_timestamp(value: str) -> bool:
    if not _TIMESTAMP.fullmatch(value):
        return False
    try:
        datetime.strptime(value, _TIMESTAMP_FORMAT)
    except ValueError:
        return False
    return True


def _is_space_or_control(char: str) -> bool:
    # Category C covers control, format (zero-width), surrogate, private-use and unassigned.
    return char.isspace() or unicodedata.category(char).startswith("C")


def _is_plausible_email(email: str) -> bool:
    local_part, at, domain = email.partition("@")
    if not at or "@" in domain:
        return False
    if not 1 <= len(local_part) <= MAX_EMAIL_LOCAL_PART_LENGTH:
        return False
    labels = domain.split(".")
    return len(labels) >= 2 and all(_DOMAIN_LABEL.fullmatch(label) for label in labels)


def _names(names: Iterable[object]) -> str:
    shown = sorted(str(name)[:_MAX_NAME_LENGTH] for name in names)
    more = ", ..." if len(shown) > _MAX_NAMES_SHOWN else ""
    return ", ".join(shown[:_MAX_NAMES_SHOWN]) + more


def _poison(field: str, rule: str) -> PoisonMessageError:
    return PoisonMessageError(f"{field}: {rule}")
