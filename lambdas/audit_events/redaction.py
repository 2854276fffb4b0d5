"""Lawful erasure that keeps the proof: a redacted record's stub and its sealed redaction entry.

Pure functions (no AWS calls), shared by ``audit redact`` (which builds both), the recorder
(which accepts the entry's built-in event type) and ``audit verify`` (which matches a stub with
its entry). A **stub** is the record without its personal content (``PERSONAL_ATTRIBUTES``),
plus who redacted it, when and why; it keeps the record's key and its sealed ``record_hash``,
so the Merkle leaf, and every inclusion proof of the record, stay valid. A **redaction entry**
is an ``AuditRecordRedacted`` event, recorded and sealed like any other, whose details name the
record by its sort key and sealed hash, and the stub by its content hash: a stub no sealed entry
names is tampering.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .contract import (
    EVENT_TYPE_ATTRIBUTE,
    PARTITION_KEY,
    PERSONAL_ATTRIBUTES,
    RECORD_HASH_ATTRIBUTE,
    REDACTED_AT_ATTRIBUTE,
    REDACTED_BY_ATTRIBUTE,
    REDACTION_EVENT_TYPE,
    REDACTION_REASON_ATTRIBUTE,
    SORT_KEY,
    SUBJECT_TYPE_ATTRIBUTE,
    SUBJECT_TYPE_PSEUDONYM,
)
from .integrity import record_hash

__all__ = [
    "BUILT_IN_EVENT_TYPES",
    "MAX_REASON_LENGTH",
    "REDACTION_DETAILS_SCHEMA",
    "RedactionEntry",
    "RedactionError",
    "check_reason",
    "is_stub",
    "principal_of",
    "pseudonymised_stub",
    "redaction_details",
    "redaction_entry",
    "redaction_stub",
]

MAX_REASON_LENGTH: Final = 256
# No "@": a reason is free text typed by an operator, and must not carry an address into the
# sealed (never erasable) redaction entry. No control characters: it is shown in terminals.
_REASON_PATTERN: Final = r"^[^@\x00-\x1f\x7f]+$"
_HASH_PATTERN: Final = r"^[0-9a-f]{64}$"
_ASSUMED_ROLE = re.compile(
    r"^arn:(?P<partition>[^:]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+$"
)

REDACTION_DETAILS_SCHEMA: Final[Mapping[str, Any]] = {
    "type": "object",
    "properties": {
        "event_key": {"type": "string", "minLength": 1, "maxLength": 1024},
        "record_hash": {"type": "string", "pattern": _HASH_PATTERN},
        "stub_hash": {"type": "string", "pattern": _HASH_PATTERN},
        "reason": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_REASON_LENGTH,
            "pattern": _REASON_PATTERN,
        },
        "redacted_by": {"type": "string", "pattern": "^arn:[^@]+$", "maxLength": 2048},
        "redacted_at": {"type": "string", "minLength": 1, "maxLength": 32},
    },
    "required": [
        "event_key",
        "record_hash",
        "stub_hash",
        "reason",
        "redacted_by",
        "redacted_at",
    ],
    "additionalProperties": False,
}
"""The details of an ``AuditRecordRedacted`` event: hashes, a key and an ARN; nothing personal."""

BUILT_IN_EVENT_TYPES: Final[Mapping[str, Mapping[str, Any]]] = {
    REDACTION_EVENT_TYPE: REDACTION_DETAILS_SCHEMA
}
"""Event types every pipeline's catalogue holds, whatever its ``event_types``."""


class RedactionError(ValueError):
    """A record that cannot be redacted, or a reason that may not be used; names the rule."""


def check_reason(reason: str) -> str:
    """The reason, stripped; RedactionError naming the rule it breaks (never echoing it)."""
    text = reason.strip()
    if not text:
        raise RedactionError("--reason: must not be empty")
    if len(text) > MAX_REASON_LENGTH:
        raise RedactionError(f"--reason: must be at most {MAX_REASON_LENGTH} characters")
    if not re.fullmatch(_REASON_PATTERN, text):
        raise RedactionError(
            "--reason: must hold no '@' (no e-mail address goes into the sealed log) and no "
            "control characters; cite the request by its ticket number instead"
        )
    return text


def principal_of(caller_arn: str) -> str:
    """The principal a redaction names: an assumed role's role ARN, without the session name.

    A session name is chosen by whoever assumes the role and often is a person's e-mail address
    (IAM Identity Center uses the user name): it would put personal data into the sealed entry.
    CloudTrail keeps the session of every UpdateItem for whoever needs the person.
    """
    match = _ASSUMED_ROLE.match(caller_arn)
    if match is None:
        return caller_arn
    return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"


def is_stub(item: Mapping[str, Any]) -> bool:
    """Whether a table item (low-level attribute values) is a redacted record's stub."""
    return REDACTED_AT_ATTRIBUTE in item


def redaction_stub(
    item: Mapping[str, Any], *, redacted_at: str, reason: str, redacted_by: str
) -> dict[str, Any]:
    """What ``item`` becomes: its personal attributes removed, the redaction's three added, its
    key and ``record_hash`` kept. RedactionError if it is a stub already, or was altered."""
    if is_stub(item):
        raise RedactionError("the record is redacted already")
    stated = item.get(RECORD_HASH_ATTRIBUTE, {}).get("S")
    if stated != record_hash(item):
        raise RedactionError(
            "the record's content does not match its record_hash (modified): `audit verify` "
            "reports it; a redaction would hide the tampering"
        )
    stub = {name: value for name, value in item.items() if name not in PERSONAL_ATTRIBUTES}
    stub[REDACTED_AT_ATTRIBUTE] = {"S": redacted_at}
    stub[REDACTION_REASON_ATTRIBUTE] = {"S": check_reason(reason)}
    stub[REDACTED_BY_ATTRIBUTE] = {"S": redacted_by}
    return stub


def pseudonymised_stub(
    item: Mapping[str, Any], *, pseudonym: str, redacted_at: str, reason: str, redacted_by: str
) -> dict[str, Any]:
    """What a record written in clear (its key, ``subject``, is the address or identifier)
    becomes under ``pseudonym``: ``redaction_stub``'s content, the pseudonym as its subject. It
    keeps the sealed ``record_hash`` and sort key, so ``audit verify`` finds the sealed record
    it replaces by those (the digest that sealed it still names the old key)."""
    if item.get(SUBJECT_TYPE_ATTRIBUTE, {}).get("S") == SUBJECT_TYPE_PSEUDONYM:
        raise RedactionError("the record's subject is a pseudonym already: redact it instead")
    stub = redaction_stub(item, redacted_at=redacted_at, reason=reason, redacted_by=redacted_by)
    stub[PARTITION_KEY] = {"S": pseudonym}
    stub[SUBJECT_TYPE_ATTRIBUTE] = {"S": SUBJECT_TYPE_PSEUDONYM}
    return stub


def redaction_details(stub: Mapping[str, Any]) -> dict[str, str]:
    """The ``AuditRecordRedacted`` event's details for a stub (``redaction_stub``'s result)."""
    return {
        "event_key": stub[SORT_KEY]["S"],
        "record_hash": stub[RECORD_HASH_ATTRIBUTE]["S"],
        "stub_hash": record_hash(stub),
        "reason": stub[REDACTION_REASON_ATTRIBUTE]["S"],
        "redacted_by": stub[REDACTED_BY_ATTRIBUTE]["S"],
        "redacted_at": stub[REDACTED_AT_ATTRIBUTE]["S"],
    }


@dataclass(frozen=True)
class RedactionEntry:
    """A recorded ``AuditRecordRedacted`` event's details: which record, which stub, why."""

    event_key: str
    record_hash: str
    stub_hash: str
    reason: str
    redacted_by: str
    redacted_at: str

    @property
    def match_key(self) -> tuple[str, str, str]:
        """What a stub must show to be this redaction's: (sort key, sealed hash, own hash)."""
        return (self.event_key, self.record_hash, self.stub_hash)


def redaction_entry(item: Mapping[str, Any]) -> RedactionEntry | None:
    """The redaction a table item records, or None when it is no redaction entry (another
    event type, or details without the schema's fields)."""
    if item.get(EVENT_TYPE_ATTRIBUTE, {}).get("S") != REDACTION_EVENT_TYPE:
        return None
    details = item.get("details", {}).get("M", {})
    fields = {}
    for name in ("event_key", "record_hash", "stub_hash", "reason", "redacted_by", "redacted_at"):
        value = details.get(name, {}).get("S") if isinstance(details, Mapping) else None
        if not isinstance(value, str):
            return None
        fields[name] = value
    return RedactionEntry(**fields)
