"""Record hashes, seal notices and signed digests: the audit log's integrity format (stdlib only).

The recorder, the sealer and ``audit verify`` all import this module, so the canonical form of a
record and of a digest is defined here and nowhere else (docs/INTEGRITY.md describes it).

- **Record hash**: SHA-256, lowercase hex, of the record's *canonical content*: the DynamoDB item
  in its typed attribute-value form (``{"S": ...}``, ``{"N": ...}``, ...), without the
  ``record_hash`` attribute itself, as JSON with keys sorted, no whitespace, UTF-8, numbers in
  DynamoDB's normalised form (no exponent, no trailing zeros) and sets sorted.
- **Digest**: the canonical JSON of :class:`Digest`; its hash is SHA-256 hex of that text, and its
  signature is ECDSA P-256 with SHA-256 (KMS ``ECDSA_SHA_256``, message type RAW) over the
  hash's 64 ASCII characters. Each digest names the previous digest's signature (a chain).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any

from .contract import (
    DIGEST_PARTITION_KEY,
    DIGEST_SORT_KEY,
    RECORD_HASH_ATTRIBUTE,
    RECORDED_AT_ATTRIBUTE,
    TIMESTAMP_FORMAT,
)

# The contract's digest-table keys and record attributes stay importable from here too: the
# integrity format is defined by them, and ``audit verify`` reads them as part of it.
__all__ = [
    "DIGEST_CHAIN",
    "DIGEST_PARTITION_KEY",
    "DIGEST_SORT_KEY",
    "DIGEST_VERSION",
    "MAX_DIGEST_BODY_BYTES",
    "NOTICE_VERSION",
    "RECORDED_AT_ATTRIBUTE",
    "RECORD_HASH_ATTRIBUTE",
    "SIGNING_ALGORITHM",
    "Digest",
    "IntegrityFormatError",
    "RecordRef",
    "canonical_number",
    "canonical_record",
    "decode_signature",
    "digest_hash",
    "digest_item",
    "encode_signature",
    "notice_body",
    "parse_digest",
    "parse_notice",
    "record_hash",
    "record_time",
    "with_record_hash",
]

DIGEST_VERSION = 1
NOTICE_VERSION = 1
SIGNING_ALGORITHM = "ECDSA_SHA_256"
DIGEST_CHAIN = "audit-log"
"""The digest table's partition key value: one chain per digest table."""

# DynamoDB's number precision: significant digits it stores (and returns) exactly.
_DYNAMODB_DIGITS = 38

# A digest item stays well below DynamoDB's 400 KB item limit.
MAX_DIGEST_BODY_BYTES = 300_000


class IntegrityFormatError(ValueError):
    """A notice, digest or item that does not have the documented form."""


def record_time(text: str) -> datetime:
    """A ``recorded_at`` or ``sealed_at`` timestamp; the earliest moment when absent or not one
    (so that such a record is treated as possibly sealed by any digest)."""
    try:
        return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


# -- records ---------------------------------------------------------------------------------


def canonical_record(item: Mapping[str, Any]) -> bytes:
    """The canonical content of a DynamoDB item (low-level form), without its record hash."""
    content = {
        name: _canonical_value(value)
        for name, value in item.items()
        if name != RECORD_HASH_ATTRIBUTE
    }
    return _canonical_json(content)


def record_hash(item: Mapping[str, Any]) -> str:
    """SHA-256 hex of :func:`canonical_record`."""
    return hashlib.sha256(canonical_record(item)).hexdigest()


def with_record_hash(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` plus its ``record_hash`` attribute."""
    return {**item, RECORD_HASH_ATTRIBUTE: {"S": record_hash(item)}}


def _canonical_value(value: Mapping[str, Any]) -> Any:
    if len(value) != 1:
        raise IntegrityFormatError("an attribute value must have exactly one type")
    ((kind, content),) = value.items()
    if kind == "S":
        return {"S": str(content)}
    if kind == "N":
        return {"N": canonical_number(str(content))}
    if kind == "B":
        return {"B": _base64(content)}
    if kind == "BOOL":
        return {"BOOL": bool(content)}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "M":
        return {"M": {str(key): _canonical_value(item) for key, item in content.items()}}
    if kind == "L":
        return {"L": [_canonical_value(item) for item in content]}
    if kind == "SS":
        return {"SS": sorted(str(item) for item in content)}
    if kind == "NS":
        return {"NS": sorted(canonical_number(str(item)) for item in content)}
    if kind == "BS":
        return {"BS": sorted(_base64(item) for item in content)}
    raise IntegrityFormatError(f"unknown attribute type {kind!r}")


def canonical_number(text: str) -> str:
    """A DynamoDB number as DynamoDB returns it: ``1.50`` -> ``1.5``, ``1E+2`` -> ``100``.

    Exact, never rounded: DynamoDB keeps 38 significant digits, Python's default context only 28,
    so the trailing zeros are stripped in a context as wide as the number itself (a change in the
    38th digit changes the hash).
    """
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise IntegrityFormatError("a number attribute is not a number") from None
    if not number.is_finite():
        raise IntegrityFormatError("a number attribute must be finite")
    if number.is_zero():
        return "0"
    exact = Context(
        prec=max(_DYNAMODB_DIGITS, len(number.as_tuple().digits)), Emax=MAX_EMAX, Emin=MIN_EMIN
    )
    return format(number.normalize(exact), "f")


def _base64(value: Any) -> str:
    # boto3 gives bytes; JSON (streams, exports) gives base64 text already.
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def _canonical_json(document: Any) -> bytes:
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


# -- seal notices (recorder -> sealer) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordRef:
    """A recorded item's key and hash, as the recorder reports it and a digest lists it."""

    subject: str
    event_key: str
    record_hash: str
    recorded_at: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.subject, self.event_key)


def notice_body(records: Iterable[RecordRef]) -> str:
    """The seal queue message that reports records the recorder has written."""
    return _canonical_json(
        {
            "version": NOTICE_VERSION,
            "records": [
                [ref.subject, ref.event_key, ref.record_hash, ref.recorded_at] for ref in records
            ],
        }
    ).decode("utf-8")


def parse_notice(body: str) -> list[RecordRef]:
    """The records a seal notice reports; :class:`IntegrityFormatError` if it is not one."""
    try:
        document = json.loads(body)
        if document.get("version") != NOTICE_VERSION:
            raise IntegrityFormatError("unknown notice version")
        return [RecordRef(*map(str, entry)) for entry in document["records"] if len(entry) == 4]
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise IntegrityFormatError(f"not a seal notice: {error}") from None


# -- digests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    """What one seal signs: the records written since the previous digest, and that digest."""

    sequence: int
    sealed_at: str
    table: str
    signing_key: str
    previous_signature: str | None
    records: tuple[RecordRef, ...] = ()
    rejected: tuple[dict[str, str], ...] = ()
    """Notices whose stored item no longer matched when sealing (altered or removed early)."""
    version: int = DIGEST_VERSION
    signature_algorithm: str = SIGNING_ALGORITHM

    def body(self) -> str:
        """The canonical text that is hashed and signed."""
        return _canonical_json(
            {
                "version": self.version,
                "sequence": self.sequence,
                "sealed_at": self.sealed_at,
                "table": self.table,
                "signing_key": self.signing_key,
                "signature_algorithm": self.signature_algorithm,
                "previous_signature": self.previous_signature,
                "records": [
                    [ref.subject, ref.event_key, ref.record_hash]
                    for ref in sorted(self.records, key=lambda ref: ref.key)
                ],
                "rejected": sorted(
                    self.rejected, key=lambda entry: (entry["subject"], entry["event_key"])
                ),
            }
        ).decode("utf-8")


def digest_hash(body: str) -> str:
    """SHA-256 hex of a digest's canonical text; the signed message is this hex text."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def parse_digest(body: str) -> Digest:
    """A digest from its canonical text; :class:`IntegrityFormatError` if it is not one."""
    try:
        document = json.loads(body)
        digest = Digest(
            version=int(document["version"]),
            sequence=int(document["sequence"]),
            sealed_at=str(document["sealed_at"]),
            table=str(document["table"]),
            signing_key=str(document["signing_key"]),
            signature_algorithm=str(document["signature_algorithm"]),
            previous_signature=document["previous_signature"],
            records=tuple(
                RecordRef(str(subject), str(key), str(hash_))
                for subject, key, hash_ in document["records"]
            ),
            rejected=tuple(dict(entry) for entry in document["rejected"]),
        )
    except (ValueError, TypeError, KeyError) as error:
        raise IntegrityFormatError(f"not a digest: {error}") from None
    if digest.version != DIGEST_VERSION:
        raise IntegrityFormatError(f"unknown digest version {digest.version}")
    return digest


def digest_item(digest: Digest, signature: bytes) -> dict[str, Any]:
    """The digest table item (low-level form) that stores a signed digest."""
    body = digest.body()
    return {
        DIGEST_PARTITION_KEY: {"S": DIGEST_CHAIN},
        DIGEST_SORT_KEY: {"N": str(digest.sequence)},
        "sealed_at": {"S": digest.sealed_at},
        "body": {"S": body},
        "digest_hash": {"S": digest_hash(body)},
        "signature": {"S": encode_signature(signature)},
        "record_count": {"N": str(len(digest.records))},
    }


def encode_signature(signature: bytes) -> str:
    return base64.b64encode(signature).decode("ascii")


def decode_signature(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
