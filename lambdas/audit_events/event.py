"""The audit event schema: building, validating and strictly parsing audit events (no AWS calls).

Delivery format: the topic's SQS subscription keeps raw message delivery OFF, so each SQS
message body is SNS's JSON notification envelope and the audit event is the envelope's
``Message``. The envelope costs a few hundred bytes per message and carries provenance that raw
delivery would drop: SNS's MessageId (recorded with each event) and the topic and time of
publication. The envelope's signature is checked before this parser runs (``sns_signature.py``).
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from .contract import (
    EVENT_TYPE_PATTERN,
    SCHEMA_VERSION,
    SUBJECT_TYPE_EMAIL,
    SUBJECT_TYPE_PSEUDONYM,
    TIMESTAMP_FORMAT,
)
from .subject import (
    SUBJECT_TYPES,
    InvalidDomainError,
    ascii_domain,
    idempotent_event_id,
    normalize_email,
    pseudonymous_subject,
)

ACCOUNT_DELETED = "AccountDeleted"
DELETE_ACCOUNT_SOURCE = "deleteAccount"

V1_EVENT_FIELDS = (
    "schema_version",
    "event_id",
    "event_type",
    "occurred_at",
    "subject",
    "source",
    "details",
)
EVENT_FIELDS = (*V1_EVENT_FIELDS, "subject_type", "idempotent")
"""The fields of a version 2 event: version 1's, whom ``subject`` names, and whether its id
comes from a caller's idempotency key."""
_FIELDS_BY_VERSION = {1: V1_EVENT_FIELDS, 2: EVENT_FIELDS}
PAYLOAD_FIELDS = ("email", "idempotency_key")
TIMESTAMP_EXAMPLE = "2024-01-31T23:59:59.123456Z"
MAX_EMAIL_BYTES = 254  # RFC 5321's 256-octet path minus its angle brackets, in UTF-8 octets
MAX_EMAIL_LOCAL_PART_BYTES = 64  # RFC 5321
MAX_IDEMPOTENCY_KEY_LENGTH = 128
MAX_SUBJECT_LENGTH = 1024
MAX_SOURCE_LENGTH = 256

# Patterns are used with fullmatch (a "$" would also accept a trailing newline) and spell out
# [0-9] because \d matches non-ASCII digits, which would break the lexicographic time order.
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
# Version 2 also has UUIDv8 ids, derived from a caller's idempotency key.
_V2_EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[48][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_PSEUDONYM = re.compile(r"[0-9a-f]{64}")
# Printable ASCII, space included: request ids, UUIDs, ULIDs, base64 tokens.
_IDEMPOTENCY_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}")
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
    subject_type: str = SUBJECT_TYPE_EMAIL
    """``email`` (the normalised address) or ``hmac-sha256`` (its keyed pseudonym)."""
    idempotent: bool = False
    """Whether event_id derives from a caller's idempotency key (then recorded once per id)."""

    @property
    def event_key(self) -> str:
        """The table's sort key: a subject's events sort by time, the id keeps keys unique."""
        return f"{self.occurred_at}#{self.event_id}"

    def to_json(self) -> str:
        """The published form: compact with sorted keys, so an event has exactly one text.

        A version 1 event keeps version 1's fields (as it was published before version 2).
        """
        document = {
            "schema_version": self.schema_version,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at,
            "subject": self.subject,
            "source": self.source,
            "details": self.details,
        }
        if self.schema_version >= 2:
            document["subject_type"] = self.subject_type
            document["idempotent"] = self.idempotent
        return json.dumps(document, separators=(",", ":"), sort_keys=True, allow_nan=False)


class DeleteAccountRequest(NamedTuple):
    """A validated deleteAccount payload."""

    email: str
    """As sent (NFC); normalise it with normalize_email for a subject."""
    idempotency_key: str | None


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
    """The e-mail of a deleteAccount payload ``{"email": "john.doe@mail.com"}``."""
    return parse_delete_account_request(payload).email


def parse_delete_account_request(payload: object) -> DeleteAccountRequest:
    """A deleteAccount payload ``{"email": ..., "idempotency_key": ...}`` (the key is optional).

    Raises InvalidPayloadError naming the field(s) and the rule; the rejected value is never part
    of the message because it is personal data.
    """
    if not isinstance(payload, dict):
        raise InvalidPayloadError("payload: must be a JSON object")
    unexpected = [name for name in payload if name not in PAYLOAD_FIELDS]
    problems = []
    if "email" not in payload:
        problems.append('missing required field "email"')
    if unexpected:
        problems.append(f"unexpected field(s) {_quoted_names(unexpected)}")
    if problems:
        # Both at once: a misspelt field ({"mail": ...}) is then recognisable as such.
        raise InvalidPayloadError(f"payload: {'; '.join(problems)}")
    email = payload["email"]
    if not isinstance(email, str):
        raise InvalidPayloadError("email: must be a string")
    email = unicodedata.normalize("NFC", email)
    # In UTF-8 bytes: SMTP's, SNS's and DynamoDB's limits count octets, not characters.
    if len(email.encode("utf-8", errors="surrogatepass")) > MAX_EMAIL_BYTES:
        raise InvalidPayloadError(f"email: must be at most {MAX_EMAIL_BYTES} bytes in UTF-8")
    # Rejected rather than stripped: the caller should learn that it sends padded values.
    if any(_is_space_or_control(char) for char in email):
        raise InvalidPayloadError("email: must not contain whitespace or control characters")
    if not _is_plausible_email(email):
        raise InvalidPayloadError("email: must be a valid email address")
    try:
        normalized = normalize_email(email)
    except InvalidDomainError as error:
        raise InvalidPayloadError(str(error)) from None
    if len(normalized.encode("utf-8")) > MAX_EMAIL_BYTES:
        raise InvalidPayloadError(
            f"email: must be at most {MAX_EMAIL_BYTES} bytes with its domain in punycode"
        )
    key = payload.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key)):
        raise InvalidPayloadError(
            f"idempotency_key: must be a string of 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable "
            "ASCII characters"
        )
    return DeleteAccountRequest(email=email, idempotency_key=key)


def build_account_deleted_event(
    payload: object, *, secret: bytes | None, now: datetime, random_id: str | None = None
) -> AuditEvent:
    """The version 2 AccountDeleted event for a deleteAccount payload (validated here).

    ``secret``: the pseudonym secret's bytes, so the event names its subject by pseudonym and
    carries no address; ``None`` keeps the address in clear (``subject_in_clear``). With an
    ``idempotency_key`` the event id derives from it and the address, so a retry is the same
    event; otherwise it is ``random_id`` or a new UUID4.
    """
    request = parse_delete_account_request(payload)
    normalized = normalize_email(request.email)
    if request.idempotency_key is not None:
        event_id = idempotent_event_id(normalized, request.idempotency_key, secret)
    else:
        event_id = random_id or str(uuid.uuid4())
    return new_account_deleted(
        request.email,
        now=now,
        event_id=event_id,
        secret=secret,
        idempotent=request.idempotency_key is not None,
    )


def new_account_deleted(
    email: str,
    *,
    now: datetime,
    event_id: str,
    secret: bytes | None = None,
    idempotent: bool = False,
) -> AuditEvent:
    """The version 2 AccountDeleted event for a validated deleteAccount e-mail.

    With the pseudonym ``secret``, the subject is the address's pseudonym and the details hold
    no personal data; without it, the subject is the normalised address and the details hold
    the address as sent.
    """
    if not _V2_EVENT_ID.fullmatch(event_id):
        raise ValueError("event_id: must be a lowercase UUID4 (or UUID8) string")
    normalized = normalize_email(email)
    if secret is not None:
        subject = pseudonymous_subject(normalized, secret)
        subject_type, details = SUBJECT_TYPE_PSEUDONYM, {}
    else:
        subject, subject_type, details = normalized, SUBJECT_TYPE_EMAIL, {"email": email}
    return AuditEvent(
        schema_version=SCHEMA_VERSION,
        event_id=event_id,
        event_type=ACCOUNT_DELETED,
        occurred_at=format_timestamp(now),
        subject=subject,
        source=DELETE_ACCOUNT_SOURCE,
        details=details,
        subject_type=subject_type,
        idempotent=idempotent,
    )


def pseudonymize(event: AuditEvent, secret: bytes) -> AuditEvent:
    """``event`` with its address replaced by the address's pseudonym (e.g. a version 1 event).

    The address also leaves the details (``details.email``, the only place where this
    pipeline's publishers ever put it). An event that already names a pseudonym, or a version 1
    event whose subject is no address at all, is returned as is.
    """
    if event.subject_type != SUBJECT_TYPE_EMAIL or "@" not in event.subject:
        return event
    try:
        normalized = normalize_email(event.subject)
    except InvalidDomainError:
        raise _poison("subject", "must be an e-mail address with a valid domain") from None
    details = {name: value for name, value in event.details.items() if name != "email"}
    return replace(
        event,
        subject=pseudonymous_subject(normalized, secret),
        subject_type=SUBJECT_TYPE_PSEUDONYM,
        details=details,
    )


def parse_audit_event(message: str) -> AuditEvent:
    """The audit event in a published message; PoisonMessageError if any rule is broken."""
    document = _load_json_object(message, "message")
    if "schema_version" not in document:
        raise _poison("schema_version", "is required")
    schema_version = document["schema_version"]
    # type() rather than isinstance(): bool is an int, and true must not pass for version 1.
    if type(schema_version) is not int or schema_version not in _FIELDS_BY_VERSION:
        raise _poison("schema_version", "must be 1 or 2, the versions understood")
    fields = _FIELDS_BY_VERSION[schema_version]
    missing = [name for name in fields if name not in document]
    if missing:
        raise _poison(missing[0], "is required")
    unexpected = [name for name in document if name not in fields]
    if unexpected:
        raise _poison("message", f"unexpected field(s): {_names(unexpected)}")

    event_id = _string(document, "event_id")
    if not (_V2_EVENT_ID if schema_version >= 2 else _EVENT_ID).fullmatch(event_id):
        raise _poison("event_id", "must be a lowercase UUID string")
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
    # Version 1 named its subject by e-mail address and had no idempotency keys.
    subject_type = document.get("subject_type", SUBJECT_TYPE_EMAIL)
    if subject_type not in SUBJECT_TYPES:
        raise _poison("subject_type", f"must be one of {', '.join(SUBJECT_TYPES)}")
    if subject_type == SUBJECT_TYPE_PSEUDONYM and not _PSEUDONYM.fullmatch(subject):
        raise _poison("subject", "must be 64 lowercase hex digits for an hmac-sha256 subject")
    idempotent = document.get("idempotent", False)
    if not isinstance(idempotent, bool):
        raise _poison("idempotent", "must be true or false")
    return AuditEvent(
        schema_version=schema_version,
        event_id=event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        subject=subject,
        source=source,
        details=details,
        subject_type=subject_type,
        idempotent=idempotent,
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
        datetime.strptime(value, TIMESTAMP_FORMAT)
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
    if not 1 <= len(local_part.encode("utf-8")) <= MAX_EMAIL_LOCAL_PART_BYTES:
        return False
    try:
        domain = ascii_domain(domain)
    except InvalidDomainError as error:
        # Said as it is: the domain is internationalised and not valid, not merely implausible.
        raise InvalidPayloadError(str(error)) from None
    labels = domain.split(".")
    return len(labels) >= 2 and all(_DOMAIN_LABEL.fullmatch(label) for label in labels)


def _names(names: Iterable[object]) -> str:
    shown = sorted(str(name)[:_MAX_NAME_LENGTH] for name in names)
    more = ", ..." if len(shown) > _MAX_NAMES_SHOWN else ""
    return ", ".join(shown[:_MAX_NAMES_SHOWN]) + more


def _quoted_names(names: Iterable[object]) -> str:
    # Field names are the sender's: one that looks like an address is not echoed.
    shown = sorted(
        "(a name that looks like an e-mail address)"
        if "@" in str(name)
        else json.dumps(str(name)[:_MAX_NAME_LENGTH], ensure_ascii=False)
        for name in names
    )
    more = ", ..." if len(shown) > _MAX_NAMES_SHOWN else ""
    return ", ".join(shown[:_MAX_NAMES_SHOWN]) + more


def _poison(field: str, rule: str) -> PoisonMessageError:
    return PoisonMessageError(f"{field}: {rule}")
