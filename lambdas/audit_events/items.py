"""The recorder's table items: an event as DynamoDB attribute values, and idempotency markers.

Pure functions (no AWS calls). Table item, one per event (written once, never updated or
deleted):

================  ====  ========================================================================
attribute         type  meaning
================  ====  ========================================================================
subject           S     partition key: whom the event is about (its HMAC-SHA-256 pseudonym by
                        default; the normalised address or identifier in clear)
event_key         S     sort key: ``<occurred_at>#<event_id>``, a subject's events in time
                        order; also the sort key of the ``by-event-type-shard`` index
event_type_shard  S     ``<event_type>#<shard>``, shard = event id mod EVENT_TYPE_INDEX_SHARDS:
                        partition key of the ``by-event-type-shard`` index (absent without it)
subject_type      S     ``hmac-sha256``, ``email`` or ``identifier``: what ``subject`` holds
event_type        S     e.g. ``AccountDeleted``, ``InvoiceVoided`` (one of the catalogue's)
event_id          S     lowercase UUID chosen by the publisher (UUID8 from an idempotency key)
occurred_at       S     when it happened, UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
schema_version    N     version of the event schema it was published in (1, 2 or 3)
idempotent        BOOL  event_id derives from a caller's idempotency key
source            S     what published it, e.g. ``deleteAccount``, ``billing``
actor             S     who did it, as the producer states (version 3; absent when not stated)
details           M     event-specific data (AccountDeleted: ``{}``, or ``{"email": ...}`` in
                        clear; other types: as the catalogue's details schema allows)
recorded_at       S     when the recorder wrote the item, same format as occurred_at
sns_message_id    S     MessageId of the SNS notification that delivered the event
topic_arn         S     the topic whose signed notification delivered it (provenance)
expires_at        N     when DynamoDB's TTL may delete it: ``recorded_at`` + RETENTION_DAYS, in
                        epoch seconds (absent without a retention period); hashed and sealed
record_hash       S     SHA-256 of the item's canonical content (``integrity.record_hash``)
================  ====  ========================================================================

An idempotent event is written together with a marker item, ``subject`` =
``idempotency#<event_id>``, ``event_key`` = ``idempotency``, in one transaction that fails if
the marker exists; it expires with its event. Any other event is written by a PartiQL ``INSERT``
(``insert_statement``), which stores an item only if its key does not exist yet: a batch's
events go to DynamoDB in one ``BatchExecuteStatement``. Breaking one of DynamoDB's limits is a
property of the message, so it raises PoisonMessageError rather than an error worth retrying.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .contract import (
    ACTOR_ATTRIBUTE,
    DETAILS_ATTRIBUTE,
    EVENT_ID_ATTRIBUTE,
    EVENT_TYPE_ATTRIBUTE,
    EVENT_TYPE_SHARD_ATTRIBUTE,
    EXPIRES_AT_ATTRIBUTE,
    IDEMPOTENCY_MARKER_PREFIX,
    IDEMPOTENCY_MARKER_SORT_KEY,
    IDEMPOTENT_ATTRIBUTE,
    OCCURRED_AT_ATTRIBUTE,
    PARTITION_KEY,
    RECORDED_AT_ATTRIBUTE,
    SCHEMA_VERSION_ATTRIBUTE,
    SNS_MESSAGE_ID_ATTRIBUTE,
    SORT_KEY,
    SOURCE_ATTRIBUTE,
    SUBJECT_TYPE_ATTRIBUTE,
    TOPIC_ARN_ATTRIBUTE,
)
from .event import AuditEvent, PoisonMessageError, SnsProvenance
from .integrity import with_record_hash

__all__ = [
    "event_type_shard",
    "expires_at",
    "idempotency_marker_key",
    "insert_statement",
    "to_idempotency_marker",
    "to_item",
]

# DynamoDB's documented limits.
_MAX_PARTITION_KEY_BYTES = 2048
_MAX_NESTING_DEPTH = 32
_MAX_NUMBER_DIGITS = 38
_MIN_NUMBER_EXPONENT = -130
_MAX_NUMBER_EXPONENT = 125


def event_type_shard(event_type: str, event_id: str, shards: int) -> str:
    """The by-type index's partition key: the type and a shard taken from the event id.

    Event ids are random (UUID4) or HMAC outputs (UUID8), so their first 32 bits spread the
    events of one type evenly over the shards.
    """
    return f"{event_type}#{int(event_id[:8], 16) % shards}"


def expires_at(recorded_at: datetime, retention_days: int | None) -> int | None:
    """A record's DynamoDB TTL: ``retention_days`` after the recorder wrote it, in whole epoch
    seconds (None: kept for the life of the table).

    From the recorder's own clock, not the producer's ``occurred_at``: a backdated event would
    otherwise be deleted by TTL before the sealer could sign it.
    """
    if retention_days is None:
        return None
    return int((recorded_at + timedelta(days=retention_days)).timestamp())


def to_item(
    event: AuditEvent,
    provenance: SnsProvenance,
    *,
    recorded_at: str,
    event_type_shards: int = 0,
    expires_at: int | None = None,
) -> dict[str, Any]:
    """The DynamoDB item (low-level attribute values) that records ``event``, with its hash.

    ``event_type_shards``: the by-type index's shard count, 0 when the table has no such index.
    ``expires_at``: its TTL in epoch seconds (None: none), inside the hash like every attribute.
    """
    subject = _text("subject", event.subject)
    if len(subject.encode("utf-8")) > _MAX_PARTITION_KEY_BYTES:
        raise PoisonMessageError(f"subject: must be at most {_MAX_PARTITION_KEY_BYTES} bytes")
    item = {
        PARTITION_KEY: {"S": subject},
        SORT_KEY: {"S": event.event_key},
        SUBJECT_TYPE_ATTRIBUTE: {"S": event.subject_type},
        EVENT_TYPE_ATTRIBUTE: {"S": event.event_type},
        EVENT_ID_ATTRIBUTE: {"S": event.event_id},
        OCCURRED_AT_ATTRIBUTE: {"S": event.occurred_at},
        SCHEMA_VERSION_ATTRIBUTE: {"N": str(event.schema_version)},
        IDEMPOTENT_ATTRIBUTE: {"BOOL": event.idempotent},
        SOURCE_ATTRIBUTE: {"S": _text("source", event.source)},
        DETAILS_ATTRIBUTE: _attribute_value("details", event.details, depth=1),
        RECORDED_AT_ATTRIBUTE: {"S": recorded_at},
        SNS_MESSAGE_ID_ATTRIBUTE: {"S": _text("sns_message_id", provenance.sns_message_id)},
        TOPIC_ARN_ATTRIBUTE: {"S": _text("topic_arn", provenance.topic_arn)},
    }
    if event.actor is not None:
        item[ACTOR_ATTRIBUTE] = {"S": _text("actor", event.actor)}
    if event_type_shards > 0:
        item[EVENT_TYPE_SHARD_ATTRIBUTE] = {
            "S": event_type_shard(event.event_type, event.event_id, event_type_shards)
        }
    if expires_at is not None:
        item[EXPIRES_AT_ATTRIBUTE] = {"N": str(expires_at)}
    return with_record_hash(item)


def idempotency_marker_key(event_id: str) -> dict[str, Any]:
    """The key of the marker of an idempotent event with id ``event_id``."""
    return {
        PARTITION_KEY: {"S": f"{IDEMPOTENCY_MARKER_PREFIX}{event_id}"},
        SORT_KEY: {"S": IDEMPOTENCY_MARKER_SORT_KEY},
    }


def to_idempotency_marker(
    event: AuditEvent, *, recorded_at: str | None = None, expires_at: int | None = None
) -> dict[str, Any]:
    """The item that makes an idempotent event's id unique in the table, whatever its time.

    Its own partition (not the subject's), so that it never shows in an account's trail and
    markers spread over the key space; it carries no personal data.
    """
    marker: dict[str, Any] = {
        **idempotency_marker_key(event.event_id),
        EVENT_ID_ATTRIBUTE: {"S": event.event_id},
        OCCURRED_AT_ATTRIBUTE: {"S": event.occurred_at},
    }
    if recorded_at is not None:
        marker[RECORDED_AT_ATTRIBUTE] = {"S": recorded_at}
    if expires_at is not None:
        # With its event: a retry after the record is gone may be recorded again, as new.
        marker[EXPIRES_AT_ATTRIBUTE] = {"N": str(expires_at)}
    return with_record_hash(marker)


# Names the statement spells out: the contract's attribute names are all of this form, so no
# quote can end a string early. Values are never spelt out: each is a parameter.
_STATEMENT_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def insert_statement(table_name: str, item: dict[str, Any]) -> dict[str, Any]:
    """A ``BatchExecuteStatement`` entry that stores ``item`` only if its key is new:
    ``INSERT INTO "table" VALUE {'name': ?, ...}``, each attribute value a parameter.

    DynamoDB answers an INSERT whose key exists with the statement error ``DuplicateItem`` and
    writes nothing, as PutItem with ``attribute_not_exists`` would; the item and its cost in
    write units are PutItem's.
    """
    names = list(item)
    for name in (table_name, *names):
        if not _STATEMENT_NAME.fullmatch(name):
            raise ValueError(f"{name!r} cannot be named in a PartiQL statement")
    fields = ", ".join(f"'{name}': ?" for name in names)
    return {
        "Statement": f'INSERT INTO "{table_name}" VALUE {{{fields}}}',
        "Parameters": [item[name] for name in names],
    }


def _attribute_value(field: str, value: object, *, depth: int) -> dict[str, Any]:
    if isinstance(value, list | dict) and depth > _MAX_NESTING_DEPTH:
        raise PoisonMessageError(f"{field}: must be nested at most {_MAX_NESTING_DEPTH} levels")
    if isinstance(value, str):
        return {"S": _text(field, value)}
    # bool before int: bool is an int subclass.
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": _number(field, value)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, list):
        return {"L": [_attribute_value(field, item, depth=depth + 1) for item in value]}
    if isinstance(value, dict):
        return {
            "M": {
                _text(field, str(key)): _attribute_value(field, item, depth=depth + 1)
                for key, item in value.items()
            }
        }
    raise PoisonMessageError(f"{field}: must hold only JSON values")


def _text(field: str, value: str) -> str:
    # JSON escapes can produce lone surrogates: not Unicode text that DynamoDB can store.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PoisonMessageError(f"{field}: must be valid Unicode text") from None
    return value


def _number(field: str, value: int | float) -> str:
    try:
        # repr() of a float is its shortest round-tripping decimal form.
        text = str(value) if isinstance(value, int) else repr(value)
    except ValueError:  # an int beyond Python's digit limit for str()
        raise PoisonMessageError(f"{field}: numbers must fit DynamoDB's number range") from None
    number = Decimal(text)
    if not number.is_finite():
        raise PoisonMessageError(f"{field}: numbers must be finite")
    if number != 0:
        significant_digits = "".join(map(str, number.as_tuple().digits)).strip("0")
        if (
            len(significant_digits) > _MAX_NUMBER_DIGITS
            or not _MIN_NUMBER_EXPONENT <= number.adjusted() <= _MAX_NUMBER_EXPONENT
        ):
            raise PoisonMessageError(f"{field}: numbers must fit DynamoDB's number range")
    return text
