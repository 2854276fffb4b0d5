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
    ACCOUNT_DELETED,
    EVENT_TYPE_PATTERN,
    MAX_DETAILS_BYTES,
    SCHEMA_VERSION,
    SUBJECT_TYPE_EMAIL,
    SUBJECT_TYPE_IDENTIFIER,
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
    rekeyed_event_id,
)

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
V3_EVENT_FIELDS = (*EVENT_FIELDS, "actor")
"""The fields of a version 3 event (any event type): version 2's and who did it (or null)."""
_FIELDS_BY_VERSION = {1: V1_EVENT_FIELDS, 2: EVENT_FIELDS, 3: V3_EVENT_FIELDS}
_SUBJECT_TYPES_BY_VERSION = {
    1: SUBJECT_TYPES,
    2: SUBJECT_TYPES,
    3: (*SUBJECT_TYPES, SUBJECT_TYPE_IDENTIFIER),
}
PAYLOAD_FIELDS = ("email", "idempotency_key")
TIMESTAMP_EXAMPLE = "2024-01-31T23:59:59.123456Z"
MAX_EMAIL_BYTES = 254  # RFC 5321's 256-octet path minus its angle brackets, in UTF-8 octets
MAX_EMAIL_LOCAL_PART_BYTES = 64  # RFC 5321
MAX_IDEMPOTENCY_KEY_LENGTH = 128
MAX_SUBJECT_LENGTH = 1024
MAX_SOURCE_LENGTH = 256
MAX_ACTOR_LENGTH = 256
MAX_IDENTIFIER_BYTES = 256
MAX_DETAILS_DEPTH = 32  # DynamoDB nests maps and lists at most 32 levels

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
    """An event (or a deleteAccount payload) broke a rule; the message names the field and the
    rule only, never the value."""


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
    actor: str | None = None
    """Who did it, as the producer names it (version 3); None when not stated."""

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
        if self.schema_version >= 3:
            document["actor"] = self.actor
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
    email = _checked_email(email, "email")
    key = _checked_idempotency_key(payload.get("idempotency_key"))
    return DeleteAccountRequest(email=email, idempotency_key=key)


def _checked_email(email: str, field: str) -> str:
    """``email`` in NFC, if it is a plausible address whose normal form fits SMTP's limits."""
    email = unicodedata.normalize("NFC", email)
    # In UTF-8 bytes: SMTP's, SNS's and DynamoDB's limits count octets, not characters.
    if len(email.encode("utf-8", errors="surrogatepass")) > MAX_EMAIL_BYTES:
        raise InvalidPayloadError(f"{field}: must be at most {MAX_EMAIL_BYTES} bytes in UTF-8")
    # Rejected rather than stripped: the caller should learn that it sends padded values.
    if any(_is_space_or_control(char) for char in email):
        raise InvalidPayloadError(f"{field}: must not contain whitespace or control characters")
    try:
        plausible = _is_plausible_email(email)
        normalized = normalize_email(email) if plausible else ""
    except (InvalidDomainError, InvalidPayloadError) as error:
        raise InvalidPayloadError(_renamed(str(error), field)) from None
    if not plausible:
        raise InvalidPayloadError(f"{field}: must be a valid email address")
    if len(normalized.encode("utf-8")) > MAX_EMAIL_BYTES:
        raise InvalidPayloadError(
            f"{field}: must be at most {MAX_EMAIL_BYTES} bytes with its domain in punycode"
        )
    return email


def _renamed(message: str, field: str) -> str:
    # subject.py's domain errors say "email:"; the field may be called otherwise.
    return field + message.removeprefix("email") if message.startswith("email:") else message


def _checked_idempotency_key(key: object) -> str | None:
    if key is not None and (not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key)):
        raise InvalidPayloadError(
            f"idempotency_key: must be a string of 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable "
            "ASCII characters"
        )
    return key


def build_account_deleted_event(
    payload: object, *, secret: bytes | None, now: datetime, random_id: str | None = None
) -> AuditEvent:
    """The AccountDeleted event (current version) for a deleteAccount payload (validated here).

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
    """The AccountDeleted event (current version) for a validated deleteAccount e-mail.

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


def normalize_subject(subject: object) -> tuple[str, str]:
    """Whom an event is about, in the one spelling its pseudonym is made of, and its type in
    clear: ``(normalised, "email" | "identifier")``.

    A subject with an ``@`` is an e-mail address: checked and normalised as deleteAccount's
    (NFC, lower case, punycode domain), so an account's events of every type share one
    pseudonym. Any other subject is an identifier (a customer id, an account number): NFC, at
    most 256 bytes of UTF-8, no whitespace or control characters, case kept.
    """
    if not isinstance(subject, str):
        raise InvalidPayloadError("subject: must be a string")
    if "@" in subject:
        return normalize_email(_checked_email(subject, "subject")), SUBJECT_TYPE_EMAIL
    identifier = unicodedata.normalize("NFC", subject)
    size = len(identifier.encode("utf-8", errors="surrogatepass"))
    if not 1 <= size <= MAX_IDENTIFIER_BYTES:
        raise InvalidPayloadError(f"subject: must be 1 to {MAX_IDENTIFIER_BYTES} bytes in UTF-8")
    if any(_is_space_or_control(char) for char in identifier):
        raise InvalidPayloadError("subject: must not contain whitespace or control characters")
    return identifier, SUBJECT_TYPE_IDENTIFIER


def subject_key(subject: str, secret: bytes | None) -> str:
    """The table's partition key for ``subject``: its pseudonym, or its normal form in clear."""
    normalized, _ = normalize_subject(subject)
    return normalized if secret is None else pseudonymous_subject(normalized, secret)


def build_event(
    event_type: object,
    *,
    subject: object,
    details: object = None,
    actor: object = None,
    source: object,
    idempotency_key: object = None,
    occurred_at: datetime | None = None,
    now: datetime,
    secret: bytes | None,
    event_id: str | None = None,
) -> AuditEvent:
    """The version 3 event of any type, validated field by field (InvalidPayloadError: the field
    and the rule, never the value).

    ``secret``: the pseudonym secret's bytes; the subject is then recorded by its keyed
    pseudonym, as AccountDeleted's address is. ``None`` keeps it in clear (``subject_in_clear``).
    With an ``idempotency_key`` the event id derives from the type, the subject and the key, so
    a retry is the same event (AccountDeleted's derivation is version 2's: address and key).
    ``details`` are checked against the catalogue by the caller (``catalogue.py``).
    """
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise InvalidPayloadError(f"event_type: must match {EVENT_TYPE_PATTERN}")
    normalized, clear_type = normalize_subject(subject)
    if event_type == ACCOUNT_DELETED:
        if clear_type != SUBJECT_TYPE_EMAIL:
            raise InvalidPayloadError("subject: must be an e-mail address for AccountDeleted")
        if details:
            raise InvalidPayloadError("details: must be empty for AccountDeleted")
        # As deleteAccount records it: the address in the details only when kept in clear.
        details = (
            {} if secret is not None else {"email": unicodedata.normalize("NFC", str(subject))}
        )
    details = checked_details({} if details is None else details)
    actor = _checked_text(actor, "actor", MAX_ACTOR_LENGTH, optional=True)
    if actor is not None and "@" in actor:
        raise InvalidPayloadError(
            "actor: must not contain @ (an e-mail address is personal data: name the actor by "
            "a role, a service or a user id)"
        )
    source = _checked_text(source, "source", MAX_SOURCE_LENGTH, optional=False)
    key = _checked_idempotency_key(idempotency_key)
    if key is not None:
        scoped = key if event_type == ACCOUNT_DELETED else f"{event_type}\x00{key}"
        event_id = idempotent_event_id(normalized, scoped, secret)
    else:
        event_id = event_id or str(uuid.uuid4())
    if not _V2_EVENT_ID.fullmatch(event_id):
        raise ValueError("event_id: must be a lowercase UUID4 (or UUID8) string")
    if occurred_at is not None and not isinstance(occurred_at, datetime):
        raise InvalidPayloadError("occurred_at: must be a datetime")
    try:
        when = format_timestamp(occurred_at or now)
    except ValueError:
        raise InvalidPayloadError("occurred_at: must be timezone-aware") from None
    return AuditEvent(
        schema_version=SCHEMA_VERSION,
        event_id=event_id,
        event_type=event_type,
        occurred_at=when,
        subject=normalized if secret is None else pseudonymous_subject(normalized, secret),
        source=str(source),
        details=details,
        subject_type=clear_type if secret is None else SUBJECT_TYPE_PSEUDONYM,
        idempotent=key is not None,
        actor=actor,
    )


def checked_details(details: object) -> dict[str, Any]:
    """``details`` if it is a JSON object of at most MAX_DETAILS_BYTES (compact UTF-8 JSON)."""
    if not isinstance(details, dict):
        raise InvalidPayloadError("details: must be a JSON object (a dict)")
    try:
        text = json.dumps(details, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        raise InvalidPayloadError(
            "details: must hold only JSON values (str keys; no NaN or Infinity)"
        ) from None
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_DETAILS_BYTES:
        raise InvalidPayloadError(f"details: must be at most {MAX_DETAILS_BYTES} bytes as JSON")
    if _depth(details) > MAX_DETAILS_DEPTH:
        raise InvalidPayloadError(f"details: must be nested at most {MAX_DETAILS_DEPTH} levels")
    return details


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


def _checked_text(value: object, field: str, limit: int, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise InvalidPayloadError(f"{field}: must be a string of 1 to {limit} characters")
    if any(unicodedata.category(char).startswith("C") for char in value):
        raise InvalidPayloadError(f"{field}: must not contain control characters")
    return value


def personal_details(
    details: dict[str, Any], fields: Iterable[str], secret: bytes | None
) -> dict[str, Any]:
    """``details`` with each personal field that it has recorded as a subject is: its keyed
    pseudonym under ``secret``, or its normal form in clear (``None``). A personal field must
    be a string that is a valid subject (an e-mail address or an identifier); InvalidPayloadError
    names it, never its value."""
    recorded = dict(details)
    for name in fields:
        if name not in recorded:
            continue
        field = f"details.{name}"
        try:
            normalized, _ = normalize_subject(recorded[name])
        except InvalidPayloadError as error:
            raise InvalidPayloadError(field + str(error).removeprefix("subject")) from None
        recorded[name] = normalized if secret is None else pseudonymous_subject(normalized, secret)
    return recorded


def pseudonymize(event: AuditEvent, secret: bytes, personal: Iterable[str] = ()) -> AuditEvent:
    """``event`` with its address replaced by the address's pseudonym (e.g. a version 1 event).

    The address also leaves the details (``details.email``, the only place where this
    pipeline's publishers ever put it), the ``personal`` details fields of its type are
    pseudonymised as its publisher would have with the secret (PoisonMessageError if one is no
    valid subject), and an idempotent event's id, which its producer could only derive without a
    key, is re-keyed (``subject.rekeyed_event_id``). An event that already names a pseudonym,
    or a version 1 event whose subject is no address at all, is returned as is.
    """
    if event.subject_type == SUBJECT_TYPE_IDENTIFIER:
        # An identifier in clear from a producer that had no secret.
        return replace(
            event,
            subject=pseudonymous_subject(event.subject, secret),
            subject_type=SUBJECT_TYPE_PSEUDONYM,
            event_id=_recorded_id(event, secret),
            details=_recorded_details(event.details, personal, secret),
        )
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
        details=_recorded_details(details, personal, secret),
        event_id=_recorded_id(event, secret),
    )


def _recorded_details(
    details: dict[str, Any], personal: Iterable[str], secret: bytes
) -> dict[str, Any]:
    try:
        return personal_details(details, personal, secret)
    except InvalidPayloadError as error:
        raise PoisonMessageError(str(error)) from None


def _recorded_id(event: AuditEvent, secret: bytes) -> str:
    # A random id tells nothing; an idempotent one from a clear producer is unkeyed.
    return rekeyed_event_id(event.event_id, secret) if event.idempotent else event.event_id


def parse_audit_event(message: str) -> AuditEvent:
    """The audit event in a published message; PoisonMessageError if any rule is broken."""
    document = _load_json_object(message, "message")
    if "schema_version" not in document:
        raise _poison("schema_version", "is required")
    schema_version = document["schema_version"]
    # type() rather than isinstance(): bool is an int, and true must not pass for version 1.
    if type(schema_version) is not int or schema_version not in _FIELDS_BY_VERSION:
        raise _poison("schema_version", "must be 1, 2 or 3, the versions understood")
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
    if schema_version >= 3:
        try:
            checked_details(details)
        except InvalidPayloadError as error:
            raise PoisonMessageError(str(error)) from None
    # Version 1 named its subject by e-mail address and had no idempotency keys.
    subject_type = document.get("subject_type", SUBJECT_TYPE_EMAIL)
    subject_types = _SUBJECT_TYPES_BY_VERSION[schema_version]
    if subject_type not in subject_types:
        raise _poison("subject_type", f"must be one of {', '.join(subject_types)}")
    if subject_type == SUBJECT_TYPE_PSEUDONYM and not _PSEUDONYM.fullmatch(subject):
        raise _poison("subject", "must be 64 lowercase hex digits for an hmac-sha256 subject")
    idempotent = document.get("idempotent", False)
    if not isinstance(idempotent, bool):
        raise _poison("idempotent", "must be true or false")
    actor = document.get("actor")
    if actor is not None and (
        not isinstance(actor, str) or not 1 <= len(actor) <= MAX_ACTOR_LENGTH
    ):
        raise _poison("actor", f"must be null or a string of 1 to {MAX_ACTOR_LENGTH} characters")
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
        actor=actor,
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
