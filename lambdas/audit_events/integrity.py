"""Record hashes, seal notices and signed digests: the audit log's integrity format (stdlib only).

The recorder, the sealer and ``audit verify`` all import this module, so the canonical form of a
record and of a digest is defined here and nowhere else (docs/INTEGRITY.md describes it).

- **Record hash**: SHA-256, lowercase hex, of the record's *canonical content*: the DynamoDB item
  in its typed attribute-value form (``{"S": ...}``, ``{"N": ...}``, ...), without the
  ``record_hash`` attribute itself, as JSON with keys sorted, no whitespace, UTF-8, numbers in
  DynamoDB's normalised form (no exponent, no trailing zeros) and sets sorted.
- **Digest**: the canonical JSON of :class:`Digest`: the records one seal covers and, from
  version 2, the Merkle tree (RFC 9162, ``merkle.py``) over every record hash sealed so far, in
  sealed order; from version 3, each record's ``expires_at`` (its DynamoDB TTL, or null), so
  that ``audit verify`` knows when a record it can no longer read was allowed to go. Its hash
  is SHA-256 hex of that text.
- **Checkpoint** (version 2): the canonical JSON of :class:`Checkpoint`, a signed tree head that
  commits to the digest's hash, the tree's size and root, the time, table, key and the previous
  checkpoint's signature (a chain). Version 2 signs the checkpoint; version 1 signed the digest.
  The signature is ECDSA P-256 with SHA-256 (KMS ``ECDSA_SHA_256``, message type RAW) over the
  signed text's SHA-256 hex (64 ASCII characters). A checkpoint is small and names no record,
  so it is what is anchored in S3 (Object Lock) and what a proof carries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any

from . import merkle
from .contract import (
    ANCHOR_PREFIX,
    DIGEST_BODY_ATTRIBUTE,
    DIGEST_BODY_OBJECT_ATTRIBUTE,
    DIGEST_CHECKPOINT_ATTRIBUTE,
    DIGEST_HASH_ATTRIBUTE,
    DIGEST_PARTITION_KEY,
    DIGEST_RECORD_COUNT_ATTRIBUTE,
    DIGEST_SEALED_AT_ATTRIBUTE,
    DIGEST_SIGNATURE_ATTRIBUTE,
    DIGEST_SORT_KEY,
    EXPIRES_AT_ATTRIBUTE,
    RECORD_HASH_ATTRIBUTE,
    RECORDED_AT_ATTRIBUTE,
    TIMESTAMP_FORMAT,
    WRITER_MAC_ATTRIBUTE,
)

# The contract's digest-table keys and record attributes stay importable from here too: the
# integrity format is defined by them, and ``audit verify`` reads them as part of it.
__all__ = [
    "CHECKPOINT_VERSION",
    "DIGEST_CHAIN",
    "DIGEST_PARTITION_KEY",
    "DIGEST_SORT_KEY",
    "DIGEST_VERSION",
    "EXPIRY_DIGEST_VERSION",
    "MAX_DIGEST_BODY_BYTES",
    "RECORDED_AT_ATTRIBUTE",
    "RECORD_HASH_ATTRIBUTE",
    "SIGNING_ALGORITHM",
    "Checkpoint",
    "Digest",
    "IntegrityFormatError",
    "RecordRef",
    "SignedCheckpoint",
    "anchor_key",
    "body_key",
    "canonical_number",
    "canonical_record",
    "decode_signature",
    "digest_body_location",
    "digest_hash",
    "digest_item",
    "encode_signature",
    "expires_at_of",
    "has_writer_mac",
    "parse_checkpoint",
    "parse_digest",
    "parse_signed_checkpoint",
    "record_hash",
    "record_leaf",
    "record_time",
    "signed_checkpoint_of",
    "signed_message",
    "signed_text",
    "with_record_hash",
    "writer_mac",
]

DIGEST_VERSION = 3
"""Version 2 adds the Merkle tree and the signed checkpoint; version 3 each record's expiry.
Version 1 and 2 digests still verify."""
DIGEST_VERSIONS = (1, 2, 3)
EXPIRY_DIGEST_VERSION = 3
"""The first version whose records carry their ``expires_at``."""
CHECKPOINT_VERSION = 1
SIGNING_ALGORITHM = "ECDSA_SHA_256"
DIGEST_CHAIN = "audit-log"
"""The digest table's partition key value: one chain per digest table."""

# DynamoDB's number precision: significant digits it stores (and returns) exactly.
_DYNAMODB_DIGITS = 38

# A digest item stays well below DynamoDB's 400 KB item limit.
MAX_DIGEST_BODY_BYTES = 300_000
# A body stored as an S3 object (``body_key``) is bounded only to keep one run's memory small:
# the stream delivers at most 6 MB of records per invocation, far less than this.
MAX_DIGEST_OBJECT_BYTES = 64_000_000


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
        if name not in (RECORD_HASH_ATTRIBUTE, WRITER_MAC_ATTRIBUTE)
    }
    return _canonical_json(content)


def record_hash(item: Mapping[str, Any]) -> str:
    """SHA-256 hex of :func:`canonical_record`."""
    return hashlib.sha256(canonical_record(item)).hexdigest()


def with_record_hash(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` plus its ``record_hash`` attribute."""
    return {**item, RECORD_HASH_ATTRIBUTE: {"S": record_hash(item)}}


# Domain separation: the writer key MACs nothing but record hashes in this format.
_WRITER_MAC_CONTEXT = b"audit-pipeline writer v1\x00"


def writer_mac(key: bytes, record_hash_text: str) -> str:
    """HMAC-SHA-256 (lowercase hex) of ``"audit-pipeline writer v1\\0" + record_hash`` under
    the writer key: the proof an item was written by the recorder (``WRITER_MAC_ATTRIBUTE``)."""
    message = _WRITER_MAC_CONTEXT + record_hash_text.encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def has_writer_mac(item: Mapping[str, Any], key: bytes) -> bool:
    """Whether ``item`` carries the writer MAC of its own ``record_hash`` attribute."""
    stated = item.get(RECORD_HASH_ATTRIBUTE, {}).get("S")
    mac = item.get(WRITER_MAC_ATTRIBUTE, {}).get("S")
    if not isinstance(stated, str) or not isinstance(mac, str) or not stated.isascii():
        return False
    return hmac.compare_digest(mac, writer_mac(key, stated))


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


# -- records as a digest lists them ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordRef:
    """A recorded item's key and hash, as the table's stream delivers it and a digest lists
    it."""

    subject: str
    event_key: str
    record_hash: str
    recorded_at: str = ""
    expires_at: int | None = None
    """The record's DynamoDB TTL (epoch seconds) as the sealer read it from the stored item
    (covered by its hash); None when it has none."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.subject, self.event_key)


# -- digests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    """What one seal covers: the records written since the previous digest, and that digest."""

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
    tree_size: int = 0
    """Version 2: how many records the chain has sealed up to and including this digest."""
    root_hash: str = merkle.EMPTY_ROOT.hex()
    """Version 2: the Merkle tree root (hex) over those records' hashes, in sealed order."""
    frontier: tuple[str, ...] = ()
    """Version 2: the tree's perfect-subtree roots (hex), so the next seal need not read the
    log (``merkle.Frontier``)."""

    def sealed_order(self) -> list[RecordRef]:
        """This digest's records in the order they enter the tree (by key, as listed)."""
        return sorted(self.records, key=lambda ref: ref.key)

    def body(self) -> str:
        """The canonical text that is hashed (and, in version 1, signed)."""
        document: dict[str, Any] = {
            "version": self.version,
            "sequence": self.sequence,
            "sealed_at": self.sealed_at,
            "table": self.table,
            "signing_key": self.signing_key,
            "signature_algorithm": self.signature_algorithm,
            "previous_signature": self.previous_signature,
            "records": [self._record_entry(ref) for ref in self.sealed_order()],
            "rejected": sorted(
                self.rejected, key=lambda entry: (entry["subject"], entry["event_key"])
            ),
        }
        if self.version >= 2:
            document |= {
                "tree_size": self.tree_size,
                "root_hash": self.root_hash,
                "tree_frontier": list(self.frontier),
            }
        return _canonical_json(document).decode("utf-8")

    def _record_entry(self, ref: RecordRef) -> list[Any]:
        entry: list[Any] = [ref.subject, ref.event_key, ref.record_hash]
        if self.version >= EXPIRY_DIGEST_VERSION:
            entry.append(ref.expires_at)  # signed with the rest: an expiry cannot be forged
        return entry

    def checkpoint(self) -> Checkpoint:
        """The signed tree head of a version 2 (or later) digest."""
        return Checkpoint(
            sequence=self.sequence,
            sealed_at=self.sealed_at,
            table=self.table,
            signing_key=self.signing_key,
            signature_algorithm=self.signature_algorithm,
            previous_signature=self.previous_signature,
            tree_size=self.tree_size,
            root_hash=self.root_hash,
            digest_hash=digest_hash(self.body()),
        )


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head (RFC 9162 §4.10 in spirit): what a seal signs from version 2 on."""

    sequence: int
    sealed_at: str
    table: str
    signing_key: str
    previous_signature: str | None
    tree_size: int
    root_hash: str
    digest_hash: str
    signature_algorithm: str = SIGNING_ALGORITHM
    version: int = CHECKPOINT_VERSION

    def body(self) -> str:
        return _canonical_json(
            {
                "kind": "audit-log-checkpoint",
                "version": self.version,
                "sequence": self.sequence,
                "sealed_at": self.sealed_at,
                "table": self.table,
                "signing_key": self.signing_key,
                "signature_algorithm": self.signature_algorithm,
                "previous_signature": self.previous_signature,
                "tree_size": self.tree_size,
                "root_hash": self.root_hash,
                "digest_hash": self.digest_hash,
            }
        ).decode("utf-8")


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint's text and its signature (base64): an anchor object, an exported file."""

    text: str
    signature: str

    @property
    def checkpoint(self) -> Checkpoint:
        return parse_checkpoint(self.text)

    def document(self) -> bytes:
        """The JSON stored in the anchor bucket and written by ``audit checkpoint``."""
        return _canonical_json({"checkpoint": self.text, "signature": self.signature})


def parse_signed_checkpoint(data: bytes | str) -> SignedCheckpoint:
    """:meth:`SignedCheckpoint.document` read back; :class:`IntegrityFormatError` otherwise."""
    try:
        document = json.loads(data)
        signed = SignedCheckpoint(str(document["checkpoint"]), str(document["signature"]))
    except (ValueError, TypeError, KeyError) as error:
        raise IntegrityFormatError(f"not a signed checkpoint: {error}") from None
    parse_checkpoint(signed.text)
    return signed


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint from its canonical text; :class:`IntegrityFormatError` if it is not one."""
    try:
        document = json.loads(text)
        if document.get("kind") != "audit-log-checkpoint":
            raise IntegrityFormatError("not a checkpoint")
        checkpoint = Checkpoint(
            version=_whole(document["version"]),
            sequence=_whole(document["sequence"]),
            sealed_at=str(document["sealed_at"]),
            table=str(document["table"]),
            signing_key=str(document["signing_key"]),
            signature_algorithm=str(document["signature_algorithm"]),
            previous_signature=_optional_text(document["previous_signature"]),
            tree_size=_whole(document["tree_size"]),
            root_hash=_hash_text(document["root_hash"]),
            digest_hash=_hash_text(document["digest_hash"]),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise IntegrityFormatError(f"not a checkpoint: {error}") from None
    if checkpoint.version != CHECKPOINT_VERSION:
        raise IntegrityFormatError(f"unknown checkpoint version {checkpoint.version}")
    if checkpoint.body() != text:
        raise IntegrityFormatError("a checkpoint must be in its canonical form")
    return checkpoint


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _hash_text(value: Any) -> str:
    text = str(value)
    if len(text) != 2 * merkle.HASH_SIZE or text != text.lower():
        raise ValueError(f"{text!r} is not a SHA-256 hash in lowercase hex")
    bytes.fromhex(text)
    return text


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def record_leaf(record_hash_text: str) -> bytes:
    """The Merkle leaf hash of a sealed record: ``leaf_hash`` of its record hash's 32 bytes."""
    try:
        return merkle.leaf_hash(bytes.fromhex(_hash_text(record_hash_text)))
    except ValueError as error:
        raise IntegrityFormatError(f"not a record hash: {error}") from None


def digest_hash(body: str) -> str:
    """SHA-256 hex of a digest's (or checkpoint's) canonical text."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def signed_text(digest: Digest) -> str:
    """What a digest's signature covers: its checkpoint (version 2) or its body (version 1)."""
    return digest.checkpoint().body() if digest.version >= 2 else digest.body()


def signed_message(digest: Digest) -> bytes:
    """The message given to KMS ``Sign`` (RAW): the signed text's SHA-256 hex, in ASCII."""
    return digest_hash(signed_text(digest)).encode("ascii")


def parse_digest(body: str) -> Digest:
    """A digest from its canonical text; :class:`IntegrityFormatError` if it is not one."""
    try:
        document = json.loads(body)
        version = int(document["version"])
        tree: dict[str, Any] = {}
        if version >= 2:
            tree = {
                "tree_size": _whole(document["tree_size"]),
                "root_hash": _hash_text(document["root_hash"]),
                "frontier": tuple(_hash_text(node) for node in document["tree_frontier"]),
            }
        digest = Digest(
            version=version,
            sequence=int(document["sequence"]),
            sealed_at=str(document["sealed_at"]),
            table=str(document["table"]),
            signing_key=str(document["signing_key"]),
            signature_algorithm=str(document["signature_algorithm"]),
            previous_signature=document["previous_signature"],
            records=tuple(_parse_record_entry(entry, version) for entry in document["records"]),
            rejected=tuple(dict(entry) for entry in document["rejected"]),
            **tree,
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise IntegrityFormatError(f"not a digest: {error}") from None
    if digest.version not in DIGEST_VERSIONS:
        raise IntegrityFormatError(f"unknown digest version {digest.version}")
    return digest


def _parse_record_entry(entry: Any, version: int) -> RecordRef:
    """One ``records`` entry of a digest body: ``[subject, event_key, record_hash]``, and from
    version 3 the record's ``expires_at`` (a whole number of epoch seconds, or null)."""
    if version >= EXPIRY_DIGEST_VERSION:
        subject, key, hash_, expires_at = entry
        expiry = None if expires_at is None else _whole(expires_at)
        return RecordRef(str(subject), str(key), str(hash_), expires_at=expiry)
    subject, key, hash_ = entry
    return RecordRef(str(subject), str(key), str(hash_))


def expires_at_of(item: Mapping[str, Any]) -> int | None:
    """A table item's ``expires_at`` (DynamoDB TTL, epoch seconds); None when it has none or
    it is not a whole number of type N (DynamoDB's TTL ignores such an item too)."""
    value = item.get(EXPIRES_AT_ATTRIBUTE)
    text = value.get("N") if isinstance(value, Mapping) and len(value) == 1 else None
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def digest_item(
    digest: Digest, signature: bytes, *, body_object: str | None = None
) -> dict[str, Any]:
    """The digest table item (low-level form) that stores a signed digest; ``signature`` is
    over :func:`signed_message`. With ``body_object`` (``<bucket>/<key>``, where the sealer
    wrote :meth:`Digest.body` first), the item points to the body instead of holding it: one
    write unit per digest, however many records it seals."""
    body = digest.body()
    item = {
        DIGEST_PARTITION_KEY: {"S": DIGEST_CHAIN},
        DIGEST_SORT_KEY: {"N": str(digest.sequence)},
        DIGEST_SEALED_AT_ATTRIBUTE: {"S": digest.sealed_at},
        DIGEST_HASH_ATTRIBUTE: {"S": digest_hash(body)},
        DIGEST_SIGNATURE_ATTRIBUTE: {"S": encode_signature(signature)},
        DIGEST_RECORD_COUNT_ATTRIBUTE: {"N": str(len(digest.records))},
    }
    if body_object is None:
        item[DIGEST_BODY_ATTRIBUTE] = {"S": body}
    else:
        item[DIGEST_BODY_OBJECT_ATTRIBUTE] = {"S": body_object}
    if digest.version >= 2:
        item[DIGEST_CHECKPOINT_ATTRIBUTE] = {"S": digest.checkpoint().body()}
    return item


def body_key(table: str, sequence: int, body_hash: str) -> str:
    """The anchor bucket's object key of a digest's body: beside the table's checkpoints, named
    by the body's hash too, so that a run that loses the race for ``sequence`` leaves its own
    (unreferenced) object rather than overwriting the winner's."""
    return f"{ANCHOR_PREFIX}{table}/{BODIES_FOLDER}{sequence:020d}-{body_hash}.json"


BODIES_FOLDER = "bodies/"
"""Below a table's checkpoint prefix: the digest bodies (``body_key``), not checkpoints."""


def digest_body_location(item: Mapping[str, Any]) -> tuple[str, str] | None:
    """(bucket, key) of the body a digest item points to; None if it holds its body (or is
    malformed: ``audit verify`` reports a digest with neither)."""
    stored = item.get(DIGEST_BODY_OBJECT_ATTRIBUTE)
    text = stored.get("S") if isinstance(stored, Mapping) else None
    if not isinstance(text, str) or "/" not in text:
        return None
    bucket, key = text.split("/", 1)
    return bucket, key


def signed_checkpoint_of(item: Mapping[str, Any]) -> SignedCheckpoint | None:
    """The signed checkpoint a version 2 digest item stores; None for a version 1 item."""
    stored = item.get(DIGEST_CHECKPOINT_ATTRIBUTE)
    signature = item.get(DIGEST_SIGNATURE_ATTRIBUTE)
    text = stored.get("S") if isinstance(stored, Mapping) else None
    if not isinstance(text, str):
        return None
    signed = signature.get("S") if isinstance(signature, Mapping) else None
    return SignedCheckpoint(text, signed if isinstance(signed, str) else "")


def anchor_key(table: str, sequence: int) -> str:
    """The anchor bucket's object key of a checkpoint: one prefix per table, in sequence order."""
    return f"{ANCHOR_PREFIX}{table}/{sequence:020d}.json"


def encode_signature(signature: bytes) -> str:
    return base64.b64encode(signature).decode("ascii")


def decode_signature(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
