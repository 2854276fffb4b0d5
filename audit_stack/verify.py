"""``audit verify``'s checks: the digest chain, each digest's signature, each record's hash.

:func:`verify_log` is pure (records, digest items and a public key in, findings out), so the
checks are tested without AWS; :func:`fetch_log` reads what it needs from DynamoDB and KMS. The
record and digest format comes from the Lambda code's ``audit_events.integrity``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from audit_stack.lambda_code import audit_events_module, contract

if TYPE_CHECKING:
    from audit_events import integrity, merkle, redaction
else:
    integrity = audit_events_module("integrity")
    merkle = audit_events_module("merkle")
    redaction = audit_events_module("redaction")

__all__ = [
    "ANCHOR",
    "ANCHOR_GAP_TOLERANCE",
    "CHAIN",
    "EXPIRED",
    "FUTURE",
    "KINDS",
    "MALFORMED",
    "MISSING",
    "MODIFIED",
    "NOT_FAILURES",
    "PENDING",
    "REDACTED",
    "REJECTED_AT_SEAL",
    "SEALED_TWICE",
    "UNSEALED",
    "AnchoredObject",
    "Finding",
    "ProofError",
    "VerifyReport",
    "anchored_objects",
    "check_inclusion_proof",
    "digest_items",
    "inclusion_proof",
    "kms_public_key",
    "load_public_key",
    "newest_signed_checkpoint",
    "public_key_pem",
    "query_all",
    "scan_records",
    "verify_anchors",
    "verify_extends",
    "verify_log",
]

# Finding kinds, in the order the report lists them.
MALFORMED = "malformed item"
MODIFIED = "modified"
MISSING = "missing"
UNSEALED = "not in any digest"
FUTURE = "recorded in the future"
PENDING = "not yet sealed"
SEALED_TWICE = "sealed twice"
REJECTED_AT_SEAL = "rejected by the sealer"
CHAIN = "chain"
ANCHOR = "anchor"
REDACTED = "redacted"
"""A record whose personal content was erased by a redaction the chain seals: not a failure."""
# -- retention (issue 18 item 1): removals that the sealed expiry allowed --------------------
EXPIRED = "expired under the policy"
"""A sealed record gone after its sealed ``expires_at``: DynamoDB's TTL did what the pipeline's
retention period asks. Reported and counted, never a failure."""
NOT_FAILURES = frozenset({EXPIRED, REDACTED, PENDING})
"""Finding kinds that are reported but leave verification OK."""
DEFAULT_SEAL_WINDOW = timedelta(seconds=300 + contract.CLOCK_MARGIN_SECONDS)
"""How long a new record may take to reach a digest: the sealer's default ``seal_interval``
(the stream's batching window) plus the clock margin."""
KINDS = (
    ANCHOR,
    CHAIN,
    MALFORMED,
    MODIFIED,
    MISSING,
    UNSEALED,
    FUTURE,
    SEALED_TWICE,
    REJECTED_AT_SEAL,
    PENDING,
    EXPIRED,
    REDACTED,
)


@dataclass(frozen=True)
class Finding:
    """One thing that does not check out; records are named by their key only."""

    kind: str
    detail: str
    subject: str = ""
    event_key: str = ""
    digest: int | None = None


@dataclass
class VerifyReport:
    """The outcome of one verification."""

    digests: int = 0
    records: int = 0
    sealed_records: int = 0
    last_sealed_at: str | None = None
    findings: list[Finding] = field(default_factory=list)
    anchored: int | None = None
    """Checkpoints found in the anchor bucket; None when no anchor bucket was checked."""

    @property
    def ok(self) -> bool:
        return all(finding.kind in NOT_FAILURES for finding in self.findings)

    @property
    def expired(self) -> int:
        """Sealed records removed after their sealed expiry (retention, not a failure)."""
        return sum(finding.kind == EXPIRED for finding in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "digests": self.digests,
            "records": self.records,
            "sealed_records": self.sealed_records,
            "expired_records": self.expired,
            "last_sealed_at": self.last_sealed_at,
            "anchored_checkpoints": self.anchored,
            "findings": [asdict(finding) for finding in self.findings],
        }


def load_public_key(data: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from PEM (a key file) or DER (KMS GetPublicKey)."""
    key = (
        serialization.load_pem_public_key(data)
        if data.lstrip().startswith(b"-----BEGIN")
        else serialization.load_der_public_key(data)
    )
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the public key is not an elliptic-curve key (ECC_NIST_P256)")
    return key


def public_key_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def verify_log(
    records: Iterable[dict[str, Any]],
    digest_items: Iterable[dict[str, Any]],
    public_key: ec.EllipticCurvePublicKey,
    *,
    since: datetime | None = None,
    table: str | None = None,
    signing_key: str | None = None,
    now: datetime | None = None,
    seal_window: timedelta = DEFAULT_SEAL_WINDOW,
) -> VerifyReport:
    """Check the chain, every digest's signature and every record against its digest.

    ``since`` selects by the signed checkpoints: the digests sealed from then and the records they
    list; a record in no digest is always checked, whatever time it claims. ``table`` and
    ``signing_key`` (name, ARN or key id), when given, must be what each digest was signed for.
    ``now`` is the check's clock (a ``recorded_at`` beyond it plus the clock margin is a finding).
    ``seal_window``: a record in no digest recorded less than this before ``now`` is still on
    its way through the table's stream to the sealer (*not yet sealed*, not a
    failure); one recorded earlier should have been sealed by now (*not in any digest*).
    """
    report = VerifyReport()
    now = now or datetime.now(UTC)
    numbered: list[tuple[int, dict[str, Any]]] = []
    for item in digest_items:
        report.digests += 1
        sequence = _digest_sequence(item)
        if sequence is None:
            report.findings.append(
                Finding(
                    MALFORMED,
                    f"a digest item whose {contract.DIGEST_SORT_KEY} "
                    f"{_shown(_attribute(item, contract.DIGEST_SORT_KEY))} is not a whole number "
                    "from 1 (N)",
                )
            )
            continue
        numbered.append((sequence, item))
    numbered.sort(key=lambda entry: entry[0])
    sealed: dict[tuple[str, str], tuple[str, int, datetime]] = {}
    # Each record's sealed expiry, for the records of digests that carry one (version 3).
    sealed_expiry: dict[tuple[str, str], int | None] = {}
    previous: tuple[int, str] | None = None  # (sequence, signature) of the digest before
    expected = _Expected(table=table, signing_key=signing_key)
    tree: merkle.Frontier | None = merkle.Frontier()  # None once a digest cannot be read
    for sequence, item in numbered:
        digest = _checked_digest(item, sequence, previous, public_key, expected, report.findings)
        previous = (sequence, _text(item, contract.DIGEST_SIGNATURE_ATTRIBUTE) or "")
        tree = _checked_tree(tree, digest, sequence, report.findings)
        if digest is None:
            continue
        report.last_sealed_at = digest.sealed_at
        sealed_at = integrity.record_time(digest.sealed_at)
        in_range = since is None or sealed_at >= since
        for ref in digest.records:
            if ref.key in sealed:
                if in_range:
                    report.findings.append(
                        Finding(
                            SEALED_TWICE,
                            f"also in digest {sealed[ref.key][1]}",
                            subject=ref.subject,
                            event_key=ref.event_key,
                            digest=sequence,
                        )
                    )
                continue
            sealed[ref.key] = (ref.record_hash, sequence, sealed_at)
            if digest.version >= integrity.EXPIRY_DIGEST_VERSION:
                sealed_expiry[ref.key] = ref.expires_at
        if in_range:
            report.findings.extend(
                Finding(
                    REJECTED_AT_SEAL,
                    str(entry.get("finding", "")),
                    str(entry.get("subject", "")),
                    str(entry.get("event_key", "")),
                    digest=sequence,
                )
                for entry in digest.rejected
            )
    report.sealed_records = len(sealed)
    records = list(records)  # read twice: redaction entries first, then every record
    redactions = _redaction_entries(records, sealed)
    moved = _moved_stubs(records, sealed)
    accounted: set[tuple[str, str]] = set()  # sealed keys a pseudonymised stub replaced
    latest_credible = now + timedelta(seconds=contract.CLOCK_MARGIN_SECONDS)
    on_its_way = now - seal_window

    seen: set[tuple[str, str]] = set()
    for item in records:
        subject = _text(item, contract.PARTITION_KEY)
        event_key = _text(item, contract.SORT_KEY)
        if subject is None or event_key is None:
            report.records += 1
            report.findings.append(
                Finding(
                    MALFORMED,
                    f"a record whose {contract.PARTITION_KEY} or {contract.SORT_KEY} is missing "
                    "or not a string (S)",
                    subject=subject or "",
                    event_key=event_key or "",
                )
            )
            continue
        key = (subject, event_key)
        seen.add(key)
        if key in sealed and since is not None and sealed[key][2] < since:
            continue  # sealed by a digest before the period checked
        report.records += 1
        finding: Finding | None
        if redaction.is_stub(item):
            origin = moved.get(key)
            finding = _checked_stub(item, key, sealed.get(origin or key), redactions, origin)
            if origin is not None and finding.kind in (REDACTED, PENDING):
                accounted.add(origin)
        else:
            finding = _checked_record(item, key, sealed.get(key), on_its_way, latest_credible)
            if finding is None and key in sealed:
                finding = _expiry_not_sealed(item, key, sealed[key][1], sealed_expiry)
        if finding is not None:
            report.findings.append(finding)
    for key, (_, sequence, sealed_at) in sealed.items():
        if key not in seen and key not in accounted and (since is None or sealed_at >= since):
            report.findings.append(_gone(key, sequence, sealed_expiry.get(key), now))
    report.findings.sort(key=lambda finding: (KINDS.index(finding.kind), finding.subject))
    return report


def _checked_record(
    item: dict[str, Any],
    key: tuple[str, str],
    sealed: tuple[str, int, datetime] | None,
    on_its_way: datetime,
    latest_credible: datetime,
) -> Finding | None:
    """The one finding about this record, if any."""
    subject, event_key = key
    sequence = sealed[1] if sealed else None

    def malformed(detail: str) -> Finding:
        return Finding(MALFORMED, detail, subject=subject, event_key=event_key, digest=sequence)

    for name in (contract.RECORD_HASH_ATTRIBUTE, contract.RECORDED_AT_ATTRIBUTE):
        if name in item and _text(item, name) is None:
            return malformed(f"its {name} is not a string (S)")
    try:
        content_hash = integrity.record_hash(item)
    except (integrity.IntegrityFormatError, AttributeError, TypeError, ValueError) as error:
        reason = str(error) if isinstance(error, integrity.IntegrityFormatError) else "bad value"
        return malformed(f"its content is not DynamoDB attribute values ({reason})")
    stated_hash = _text(item, contract.RECORD_HASH_ATTRIBUTE)
    recorded_text = _text(item, contract.RECORDED_AT_ATTRIBUTE) or ""
    recorded_at = integrity.record_time(recorded_text)
    if sealed is not None:
        sealed_hash, sequence, _ = sealed
        if content_hash != sealed_hash or stated_hash != sealed_hash:
            return Finding(
                MODIFIED,
                "differs from what was sealed",
                subject=subject,
                event_key=event_key,
                digest=sequence,
            )
        return None
    if recorded_at > latest_credible:
        return Finding(
            FUTURE,
            f"claims {contract.RECORDED_AT_ATTRIBUTE} {recorded_text}, after this check's clock",
            subject=subject,
            event_key=event_key,
        )
    if recorded_at > on_its_way:
        return Finding(
            PENDING,
            "recorded within the seal window: on its way through the table's stream",
            subject=subject,
            event_key=event_key,
        )
    return Finding(
        UNSEALED,
        "not sealed within the seal window: written outside the recorder, or the sealer is behind",
        subject=subject,
        event_key=event_key,
    )


# -- retention (issue 18 item 1) ----------------------------------------------------------------


def _gone(key: tuple[str, str], sequence: int, expires_at: int | None, now: datetime) -> Finding:
    """A sealed record no longer in the table: expired under the policy when the digest that
    sealed it (signed, so not forgeable) says it expired before ``now`` (DynamoDB's TTL deletes
    an item once its expiry is less than the current time, never sooner); missing otherwise."""
    subject, event_key = key
    if expires_at is not None and expires_at < now.timestamp():
        return Finding(
            EXPIRED,
            f"removed after its sealed expires_at {_epoch_text(expires_at)}",
            subject=subject,
            event_key=event_key,
            digest=sequence,
        )
    detail = "sealed but no longer in the table"
    if expires_at is not None:
        detail += f", before its sealed expires_at {_epoch_text(expires_at)}"
    return Finding(MISSING, detail, subject=subject, event_key=event_key, digest=sequence)


def _expiry_not_sealed(
    item: dict[str, Any],
    key: tuple[str, str],
    sequence: int,
    sealed_expiry: Mapping[tuple[str, str], int | None],
) -> Finding | None:
    """A record present and matching its hash must also have the expiry its digest signed
    (version 3 digests; older ones carry none), so that every sealed expiry is the record's own
    and a sealer cannot sign a shorter life than the record was written with."""
    if key not in sealed_expiry or integrity.expires_at_of(item) == sealed_expiry[key]:
        return None
    return Finding(
        MODIFIED,
        f"its {contract.EXPIRES_AT_ATTRIBUTE} is not the one its digest sealed",
        subject=key[0],
        event_key=key[1],
        digest=sequence,
    )


def _epoch_text(seconds: int) -> str:
    """Epoch seconds as an ISO 8601 UTC time (or the raw number beyond datetime's range)."""
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(seconds)


# -- redaction (lawful erasure): a stub is fine when a sealed redaction entry names it --------


@dataclass
class _Redactions:
    """The redaction entries in the table: sealed unchanged, and recorded but not yet sealed."""

    sealed: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    pending: set[tuple[str, str, str]] = field(default_factory=set)


def _redaction_entries(
    records: Iterable[dict[str, Any]], sealed: Mapping[tuple[str, str], tuple[str, int, datetime]]
) -> _Redactions:
    """Every ``AuditRecordRedacted`` record, by what it names; only an entry whose content is
    what was sealed vouches for a stub (an altered entry is reported as modified anyway)."""
    found = _Redactions()
    for item in records:
        entry = redaction.redaction_entry(item)
        key = (_text(item, contract.PARTITION_KEY), _text(item, contract.SORT_KEY))
        if entry is None or key[0] is None or key[1] is None:
            continue
        seal = sealed.get((key[0], key[1]))
        try:
            content_hash = integrity.record_hash(item)
        except (integrity.IntegrityFormatError, AttributeError, TypeError, ValueError):
            continue
        if seal is None:
            if _text(item, contract.RECORD_HASH_ATTRIBUTE) == content_hash:
                found.pending.add(entry.match_key)
        elif seal[0] == content_hash:
            found.sealed[entry.match_key] = entry
    return found


def _moved_stubs(
    records: Iterable[dict[str, Any]], sealed: Mapping[tuple[str, str], tuple[str, int, datetime]]
) -> dict[tuple[str, str], tuple[str, str]]:
    """Stubs under a key no digest holds whose sort key and kept hash a digest sealed under
    another key: records written in clear, moved under their pseudonym (``audit redact
    --pseudonymise``). Stub key -> the sealed key it replaces."""
    by_hash = {(key[1], seal[0]): key for key, seal in sealed.items()}
    moved = {}
    for item in records:
        subject, event_key = _text(item, contract.PARTITION_KEY), _text(item, contract.SORT_KEY)
        if subject is None or event_key is None or not redaction.is_stub(item):
            continue
        if (subject, event_key) in sealed:
            continue
        origin = by_hash.get((event_key, _text(item, contract.RECORD_HASH_ATTRIBUTE) or ""))
        if origin is not None:
            moved[(subject, event_key)] = origin
    return moved


def _checked_stub(
    item: dict[str, Any],
    key: tuple[str, str],
    sealed: tuple[str, int, datetime] | None,
    redactions: _Redactions,
    moved_from: tuple[str, str] | None = None,
) -> Finding:
    """A redacted record's finding: **redacted** (not a failure) when it keeps its sealed hash
    and a sealed redaction entry names this very stub; tampering otherwise. ``moved_from``: the
    sealed key (in clear) of a record moved under its pseudonym."""
    subject, event_key = key
    moved = "pseudonymised (moved from its key in clear) and " if moved_from else ""

    def finding(kind: str, detail: str) -> Finding:
        return Finding(
            kind, detail, subject=subject, event_key=event_key, digest=sealed[1] if sealed else None
        )

    stated_hash = _text(item, contract.RECORD_HASH_ATTRIBUTE)
    if sealed is None:
        return finding(UNSEALED, "a redacted stub of a record no digest holds")
    if stated_hash != sealed[0]:
        return finding(MODIFIED, "a redacted stub that does not keep its sealed record_hash")
    try:
        stub_hash = integrity.record_hash(item)
    except (integrity.IntegrityFormatError, AttributeError, TypeError, ValueError):
        return finding(MALFORMED, "a redacted stub whose content is not attribute values")
    match_key = (event_key, sealed[0], stub_hash)
    entry = redactions.sealed.get(match_key)
    if entry is not None:
        return finding(
            REDACTED,
            f"{moved}redacted at {entry.redacted_at} by {entry.redacted_by}: {entry.reason}",
        )
    if match_key in redactions.pending:
        return finding(PENDING, "redacted; its redaction entry is not yet sealed")
    return finding(MODIFIED, "a redacted stub that no sealed redaction entry names (tampering)")


@dataclass(frozen=True)
class _Expected:
    """What every digest must have been signed for, when the caller knows it."""

    table: str | None = None
    signing_key: str | None = None


def _checked_digest(
    item: dict[str, Any],
    sequence: int,
    previous: tuple[int, str] | None,
    public_key: ec.EllipticCurvePublicKey,
    expected: _Expected,
    findings: list[Finding],
) -> Any:
    """The digest in ``item`` if its hash, signature and link check out; findings otherwise.

    The signed body is the truth: every stored attribute that restates it must agree with it.
    """

    def fail(detail: str, kind: str = CHAIN) -> None:
        findings.append(Finding(kind, detail, digest=sequence))

    expected_previous = previous[0] + 1 if previous else 1
    if sequence != expected_previous:
        fail(f"digests {expected_previous}..{sequence - 1} are missing (a gap in the chain)")
    stored: dict[str, str] = {}
    names = (
        contract.DIGEST_BODY_ATTRIBUTE,
        contract.DIGEST_HASH_ATTRIBUTE,
        contract.DIGEST_SIGNATURE_ATTRIBUTE,
    )
    for name in names:
        value = _text(item, name)
        location = integrity.digest_body_location(item)
        if value is None and name == contract.DIGEST_BODY_ATTRIBUTE and location is not None:
            fail(
                f"its body object s3://{location[0]}/{location[1]} cannot be read (deleted, "
                "or not readable by this caller)"
            )
            return None
        if value is None:
            fail(f"its {name} is missing or not a string (S)", MALFORMED)
            return None
        stored[name] = value
    body, stated_hash, signature_text = (stored[name] for name in names)
    if integrity.digest_hash(body) != stated_hash:
        fail("its content does not match its hash")
        return None
    # Version 2 signs the checkpoint (which names the digest's hash); version 1 the digest.
    signed = integrity.signed_checkpoint_of(item)
    if not signature_verifies(signed.text if signed else body, signature_text, public_key):
        fail("its signature does not verify with the signing key's public key")
        return None
    try:
        digest = integrity.parse_digest(body)
        checkpoint = integrity.parse_checkpoint(signed.text) if signed else None
    except integrity.IntegrityFormatError as error:
        fail(str(error), MALFORMED)
        return None
    if digest.version >= 2 and checkpoint != digest.checkpoint():
        fail("its signed checkpoint does not describe this digest")
        return None
    if digest.version < 2 and signed is not None:
        fail("a version 1 digest stored with a checkpoint")
        return None
    if digest.sequence != sequence:
        fail(f"it is stored as digest {sequence} but signed as digest {digest.sequence}")
    stored_sealed_at = _text(item, contract.DIGEST_SEALED_AT_ATTRIBUTE)
    if stored_sealed_at != digest.sealed_at:
        shown = _shown(stored_sealed_at)
        fail(f"its stored sealed_at {shown} is not the signed {digest.sealed_at}")
    stored_count = _attribute(item, "record_count")
    if stored_count != {"N": str(len(digest.records))}:
        shown = _shown(stored_count)
        fail(f"its stored record_count {shown} is not the signed {len(digest.records)}")
    if expected.table is not None and digest.table != expected.table:
        fail(f"it was signed for table {digest.table!r}, not {expected.table!r}")
    if expected.signing_key is not None and not _same_key(digest.signing_key, expected.signing_key):
        fail(f"it names signing key {digest.signing_key!r}, not {expected.signing_key!r}")
    if previous is None:
        if sequence == 1 and digest.previous_signature is not None:
            fail("the first digest names a previous one")
    elif sequence == previous[0] + 1 and digest.previous_signature != previous[1]:
        fail(f"it does not follow digest {previous[0]} (a fork or a replaced digest)")
    return digest


def signature_verifies(
    text: str, item: dict[str, Any] | str, public_key: ec.EllipticCurvePublicKey
) -> bool:
    """Whether the signature (an item's ``signature`` attribute, or base64 text) is the
    signing key's over ``text``'s SHA-256 hex."""
    encoded = (
        item
        if isinstance(item, str)
        else item.get(contract.DIGEST_SIGNATURE_ATTRIBUTE, {}).get("S", "")
    )
    try:
        signature = integrity.decode_signature(encoded)
        public_key.verify(
            signature,
            integrity.digest_hash(text).encode("ascii"),
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def _checked_tree(
    tree: merkle.Frontier | None, digest: Any, sequence: int, findings: list[Finding]
) -> merkle.Frontier | None:
    """The Merkle tree grown by ``digest``'s records; a finding when a version 2 digest states
    another tree. None (checks stop) once a digest could not be read."""
    if tree is None or digest is None:
        return None
    try:
        for ref in digest.sealed_order():
            tree.append(integrity.record_leaf(ref.record_hash))
    except integrity.IntegrityFormatError as error:
        findings.append(Finding(CHAIN, str(error), digest=sequence))
        return None
    if digest.version >= 2 and (
        digest.tree_size != tree.size
        or digest.root_hash != tree.root().hex()
        or list(digest.frontier) != [node.hex() for node in tree.nodes]
    ):
        findings.append(
            Finding(
                CHAIN,
                f"its Merkle tree (size {digest.tree_size}) is not the tree of the "
                f"{tree.size} record(s) sealed up to it",
                digest=sequence,
            )
        )
        return None
    return tree


def _attribute(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else None


def _text(item: Any, name: str) -> str | None:
    """The attribute's string, or None when it is missing or of another type than S."""
    value = _attribute(item, name)
    if isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get("S"), str):
        text: str = value["S"]
        return text
    return None


def _digest_sequence(item: Any) -> int | None:
    """The digest's stored sequence number, or None unless it is a whole number from 1."""
    value = _attribute(item, contract.DIGEST_SORT_KEY)
    if not (isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get("N"), str)):
        return None
    text: str = value["N"]
    return int(text) if text.isascii() and text.isdigit() and int(text) >= 1 else None


def _same_key(signed: str, expected: str) -> bool:
    """Whether a key ARN and a key id or ARN name the same KMS key."""
    return signed.rsplit("/", 1)[-1] == expected.rsplit("/", 1)[-1]


def _shown(value: Any) -> str:
    """A stored value for a finding: short, and never more than the attribute's own text."""
    text = "(missing)" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- reading the log from DynamoDB and KMS -------------------------------------------------------


def scan_records(dynamodb: Any, table: str) -> Iterator[dict[str, Any]]:
    """Every item of the audit table (strongly consistent)."""
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**request)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def digest_items(dynamodb: Any, digest_table: str, s3: Any) -> list[dict[str, Any]]:
    """Every digest of the chain, oldest first, each with its ``body``: the item's own, or the
    object it points to, read with ``s3`` (a digest whose body object cannot be read is
    returned without one: ``verify_log`` reports it, naming the object)."""
    request: dict[str, Any] = {
        "TableName": digest_table,
        "KeyConditionExpression": "#c = :c",
        "ExpressionAttributeNames": {"#c": contract.DIGEST_PARTITION_KEY},
        "ExpressionAttributeValues": {":c": {"S": integrity.DIGEST_CHAIN}},
        "ConsistentRead": True,
    }
    return [with_body(item, s3) for item in query_all(dynamodb, request)]


def with_body(item: dict[str, Any], s3: Any) -> dict[str, Any]:
    """``item`` with its body in ``body``, fetched from the anchor bucket when the item points
    there; unchanged when it holds its body or the object cannot be read."""
    location = integrity.digest_body_location(item)
    if location is None or contract.DIGEST_BODY_ATTRIBUTE in item:
        return item
    bucket, key = location
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        text = bytes(body).decode("utf-8")
    except (ClientError, UnicodeDecodeError):
        return item
    return item | {contract.DIGEST_BODY_ATTRIBUTE: {"S": text}}


def query_all(dynamodb: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item a DynamoDB Query ``request`` finds, across its pages."""
    items: list[dict[str, Any]] = []
    request = dict(request)
    while True:
        page = dynamodb.query(**request)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def kms_public_key(kms: Any, key_id: str) -> ec.EllipticCurvePublicKey:
    """The signing key's public key, from KMS (kms:GetPublicKey)."""
    return load_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])


# -- checkpoints anchored outside the account (S3 Object Lock) and saved by witnesses ---------

ANCHOR_GAP_TOLERANCE = timedelta(minutes=5)
"""Allowed on top of heartbeat + seal interval between two checkpoints: a run's own duration
(the sealer's timeout is 60 s) and the clocks' spread."""


@dataclass(frozen=True)
class AnchoredObject:
    """One object key of the anchor bucket and the content of each of its versions, oldest
    first. Object Lock forbids deleting or changing a version; a PutObject on the same key adds
    one, which is why every version is read."""

    key: str
    versions: tuple[bytes, ...]


@dataclass
class _ChainTree:
    """What the digest table says: the leaves in sealed order and each digest's checkpoint."""

    leaves: list[bytes] = field(default_factory=list)
    checkpoints: dict[int, Any] = field(default_factory=dict)  # sequence -> SignedCheckpoint
    digest_of: list[int] = field(default_factory=list)  # leaf index -> digest sequence
    readable: bool = True
    digests: int = 0


def _chain_tree(digest_items: Iterable[dict[str, Any]]) -> _ChainTree:
    tree = _ChainTree()
    numbered = [
        (sequence, item)
        for item in digest_items
        if (sequence := _digest_sequence(item)) is not None  # verify_log names the others
    ]
    for sequence, item in sorted(numbered, key=lambda entry: entry[0]):
        tree.digests += 1
        signed = integrity.signed_checkpoint_of(item)
        if signed is not None:
            tree.checkpoints[sequence] = signed
        if not tree.readable:
            continue
        try:
            digest = integrity.parse_digest(_text(item, contract.DIGEST_BODY_ATTRIBUTE) or "")
            leaves = [integrity.record_leaf(ref.record_hash) for ref in digest.sealed_order()]
        except integrity.IntegrityFormatError:
            tree.readable = False  # verify_log reports it; the tree stops here
            continue
        tree.leaves.extend(leaves)
        tree.digest_of.extend([sequence] * len(leaves))
    return tree


def _sequence_of(item: dict[str, Any]) -> int:
    return _digest_sequence(item) or -1


def _checked_checkpoint(
    data: bytes | str, public_key: ec.EllipticCurvePublicKey
) -> tuple[Any, str | None]:
    """(SignedCheckpoint, None) when ``data`` is one signed with the key; (None, why) if not."""
    try:
        signed = integrity.parse_signed_checkpoint(data)
    except integrity.IntegrityFormatError as error:
        return None, str(error)
    if not signature_verifies(signed.text, signed.signature, public_key):
        return None, "its signature does not verify with the signing key's public key"
    return signed, None


def verify_anchors(
    digest_items: Iterable[dict[str, Any]],
    anchors: Iterable[AnchoredObject],
    public_key: ec.EllipticCurvePublicKey,
    *,
    max_gap: timedelta | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    """Check the digest table against the checkpoints anchored in S3: each anchored checkpoint
    is in the table unchanged and the table's tree extends it, nothing anchored is missing
    (truncation, a wiped or restarted log), no key was written twice, consecutive anchored
    checkpoints are at most ``max_gap`` apart, and (given ``now``) the newest is at most
    ``max_gap`` old: a log gone silent, or whose anchoring stopped, is a finding while it is
    silent, not only once it speaks again."""
    findings: list[Finding] = []

    def fail(detail: str, sequence: int | None = None) -> None:
        findings.append(Finding(ANCHOR, detail, digest=sequence))

    anchored: dict[int, Any] = {}
    for anchor in anchors:
        versions = list(dict.fromkeys(anchor.versions))
        if len(versions) > 1:
            fail(f"{anchor.key} was written {len(versions)} times with different contents")
        for data in versions:
            signed, problem = _checked_checkpoint(data, public_key)
            if signed is None:
                fail(f"{anchor.key}: {problem}")
                continue
            sequence = signed.checkpoint.sequence
            if integrity.anchor_key(signed.checkpoint.table, sequence) != anchor.key:
                fail(
                    f"{anchor.key} holds checkpoint {sequence} of table "
                    f"{signed.checkpoint.table!r}: not where it belongs"
                )
                continue
            # The oldest version wins: it was there first, and is locked.
            anchored.setdefault(sequence, signed)
    if not anchored:
        return findings
    tree = _chain_tree(digest_items)
    newest = max(anchored)
    if not tree.digests:
        fail(
            f"the digest table is empty but {len(anchored)} checkpoint(s) are anchored, the "
            f"newest digest {newest}: the log was wiped or restarted",
            newest,
        )
        return findings
    roots = _roots_at(tree.leaves, {signed.checkpoint.tree_size for signed in anchored.values()})
    for sequence, signed in sorted(anchored.items()):
        checkpoint = signed.checkpoint
        stored = tree.checkpoints.get(sequence)
        if stored is None:
            which = "the newest anchored checkpoint" if sequence == newest else "a checkpoint"
            fail(
                f"{which} (digest {sequence}) is not in the digest table: the log was "
                "truncated, restarted or rewritten",
                sequence,
            )
        elif (stored.text, stored.signature) != (signed.text, signed.signature):
            fail(
                f"digest {sequence} differs from its anchored checkpoint: rewritten and re-signed",
                sequence,
            )
        if tree.readable and roots.get(checkpoint.tree_size) != checkpoint.root_hash:
            fail(
                f"the table's records do not extend anchored checkpoint {sequence} (its "
                f"{checkpoint.tree_size} record(s) have another Merkle root, or are fewer)",
                sequence,
            )
    if max_gap is not None:
        ordered = sorted(anchored.items())
        for (before, first), (after, second) in itertools.pairwise(ordered):
            gap = integrity.record_time(second.checkpoint.sealed_at) - integrity.record_time(
                first.checkpoint.sealed_at
            )
            if gap > max_gap:
                fail(
                    f"no checkpoint anchored between digest {before} and digest {after} for "
                    f"{gap}; the heartbeat allows {max_gap}",
                    after,
                )
        last_at = integrity.record_time(anchored[newest].checkpoint.sealed_at)
        if now is not None and now - last_at > max_gap:
            fail(
                f"no checkpoint anchored since digest {newest}, {now - last_at} before this "
                f"check; the heartbeat allows {max_gap}: the sealer stopped, or its checkpoints "
                "are no longer anchored",
                newest,
            )
    return findings


def _roots_at(leaves: list[bytes], sizes: set[int]) -> dict[int, str]:
    """The Merkle root of the first n leaves, for each n in ``sizes`` (one pass)."""
    frontier = merkle.Frontier()
    roots: dict[int, str] = {}
    if 0 in sizes:
        roots[0] = merkle.EMPTY_ROOT.hex()
    for leaf in leaves:
        frontier.append(leaf)
        if frontier.size in sizes:
            roots[frontier.size] = frontier.root().hex()
    return roots


def newest_signed_checkpoint(digest_items: Iterable[dict[str, Any]]) -> Any:
    """The newest digest's signed checkpoint; None when there is none (empty, or version 1)."""
    items = sorted(digest_items, key=_sequence_of)
    return integrity.signed_checkpoint_of(items[-1]) if items else None


def verify_extends(
    saved: bytes | str,
    digest_items: Iterable[dict[str, Any]],
    public_key: ec.EllipticCurvePublicKey,
) -> list[Finding]:
    """Whether today's log extends a checkpoint saved earlier (``audit checkpoint``), proven
    by an RFC 9162 consistency proof from its tree to the newest checkpoint's tree."""
    signed, problem = _checked_checkpoint(saved, public_key)
    if signed is None:
        return [Finding(ANCHOR, f"the saved checkpoint: {problem}")]
    old = signed.checkpoint
    items = list(digest_items)
    tree = _chain_tree(items)
    newest = newest_signed_checkpoint(items)
    if newest is None:
        return [
            Finding(
                ANCHOR,
                f"the log has no checkpoint, but one of {old.tree_size} record(s) was saved",
                digest=old.sequence,
            )
        ]
    new = newest.checkpoint
    stored = tree.checkpoints.get(old.sequence)
    if stored is not None and stored.text != signed.text:
        return [Finding(ANCHOR, "the saved checkpoint's digest differs today", digest=old.sequence)]
    if old.tree_size > new.tree_size or not tree.readable or len(tree.leaves) < new.tree_size:
        return [
            Finding(
                ANCHOR,
                f"today's log ({new.tree_size} record(s)) is shorter than the saved "
                f"checkpoint ({old.tree_size})",
                digest=old.sequence,
            )
        ]
    proof = merkle.consistency_proof(tree.leaves[: new.tree_size], old.tree_size)
    if not merkle.verify_consistency(
        old.tree_size,
        new.tree_size,
        bytes.fromhex(old.root_hash),
        bytes.fromhex(new.root_hash),
        proof,
    ):
        return [
            Finding(
                ANCHOR,
                f"today's log (digest {new.sequence}) does not extend the saved checkpoint: "
                "its history was rewritten",
                digest=old.sequence,
            )
        ]
    return []


class ProofError(ValueError):
    """No inclusion proof can be made, or a proof does not check out; the message says why."""


PROOF_FORMAT = "audit-log-inclusion-proof/1"


def inclusion_proof(
    record: dict[str, Any], digest_items: Iterable[dict[str, Any]]
) -> dict[str, Any]:
    """A self-contained proof that ``record`` (a table item) is in the log: its canonical
    content and hash, its leaf index, the audit path to the newest checkpoint, and that signed
    checkpoint. Raises ProofError when the record is not sealed or was changed."""
    items = list(digest_items)
    tree = _chain_tree(items)
    newest = newest_signed_checkpoint(items)
    if newest is None:
        raise ProofError("the log has no version 2 checkpoint yet: run `audit seal` first")
    size = newest.checkpoint.tree_size
    stated = record.get(contract.RECORD_HASH_ATTRIBUTE, {}).get("S", "")
    stub = redaction.is_stub(record)
    # A redacted record's content is gone; its sealed hash, which it keeps, is still the leaf.
    content_hash = stated if stub else integrity.record_hash(record)
    if stated != content_hash:
        raise ProofError("the record's content does not match its record_hash (modified)")
    try:
        leaf = integrity.record_leaf(content_hash)
    except integrity.IntegrityFormatError as error:
        raise ProofError(str(error)) from None
    if leaf not in tree.leaves[:size]:
        raise ProofError(
            "the record is not sealed in the log (not yet sealed? the table's stream brings it "
            "to the sealer within seal_interval)"
        )
    index = tree.leaves.index(leaf)
    return {
        "format": PROOF_FORMAT,
        "record": {
            "subject": record[contract.PARTITION_KEY]["S"],
            "event_key": record[contract.SORT_KEY]["S"],
            "record_hash": content_hash,
            "canonical_content": (
                None if stub else integrity.canonical_record(record).decode("utf-8")
            ),
            **({"redacted": _redaction_shown(record)} if stub else {}),
        },
        "digest": tree.digest_of[index],
        "leaf_index": index,
        "tree_size": size,
        "audit_path": [node.hex() for node in merkle.inclusion_proof(tree.leaves[:size], index)],
        "checkpoint": {"checkpoint": newest.text, "signature": newest.signature},
    }


def check_inclusion_proof(document: Any, public_key: ec.EllipticCurvePublicKey) -> Any:
    """The signed checkpoint a proof (``inclusion_proof``) is anchored to, if every step checks
    out with ``public_key``; ProofError naming the first step that does not."""
    try:
        if document["format"] != PROOF_FORMAT:
            raise ProofError(f"format is not {PROOF_FORMAT}")
        record = document["record"]
        # A redacted record's proof carries no content (erased), only its sealed hash.
        redacted = record["canonical_content"] is None and "redacted" in record
        content = str(record["canonical_content"]).encode("utf-8")
        record_hash = str(record["record_hash"])
        index, size = int(document["leaf_index"]), int(document["tree_size"])
        path = [bytes.fromhex(str(node)) for node in document["audit_path"]]
        checkpoint_document = json.dumps(document["checkpoint"])
    except (KeyError, TypeError, ValueError) as error:
        raise ProofError(f"not an inclusion proof: {error}") from None
    if not redacted and hashlib.sha256(content).hexdigest() != record_hash:
        raise ProofError("the record's canonical content does not hash to its record_hash")
    signed, problem = _checked_checkpoint(checkpoint_document, public_key)
    if signed is None:
        raise ProofError(f"the checkpoint: {problem}")
    checkpoint = signed.checkpoint
    if checkpoint.tree_size != size:
        raise ProofError("the proof's tree size is not the checkpoint's")
    try:
        leaf = integrity.record_leaf(record_hash)
    except integrity.IntegrityFormatError as error:
        raise ProofError(str(error)) from None
    if not merkle.verify_inclusion(index, size, leaf, path, bytes.fromhex(checkpoint.root_hash)):
        raise ProofError("the audit path does not lead to the checkpoint's Merkle root")
    return signed


def _redaction_shown(stub: dict[str, Any]) -> dict[str, str]:
    """What a proof of a redacted record says about its redaction (no personal data left)."""
    return {
        name: _text(stub, name) or ""
        for name in (
            contract.REDACTED_AT_ATTRIBUTE,
            contract.REDACTION_REASON_ATTRIBUTE,
            contract.REDACTED_BY_ATTRIBUTE,
        )
    }


def anchored_objects(s3: Any, bucket: str, table: str) -> list[AnchoredObject]:
    """Every version of every checkpoint of ``table`` in the anchor bucket, oldest first (the
    digest bodies beside them, below ``bodies/``, are not checkpoints)."""
    prefix = integrity.anchor_key(table, 0).rsplit("/", 1)[0] + "/"
    versions: dict[str, list[tuple[Any, str]]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            if integrity.BODIES_FOLDER in version["Key"][len(prefix) :]:
                continue  # a digest's body (read through its item), not a checkpoint
            versions.setdefault(version["Key"], []).append(
                (version["LastModified"], version["VersionId"])
            )
    objects = []
    for key, found in sorted(versions.items()):
        # S3 lists a key's versions newest first, and LastModified has whole seconds: two
        # versions written in one second keep the listing's order (reversed), not a tie's.
        oldest_first = sorted(enumerate(found), key=lambda entry: (entry[1][0], -entry[0]))
        contents = tuple(
            s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"].read()
            for _, (_, version_id) in oldest_first
        )
        objects.append(AnchoredObject(key, contents))
    return objects
