"""``audit verify``'s checks: the digest chain, each digest's signature, each record's hash.

:func:`verify_log` is pure (records, digest items and a public key in, findings out), so the
checks are tested without AWS; :func:`fetch_log` reads what it needs from DynamoDB and KMS. The
record and digest format comes from the Lambda code's ``audit_events.integrity``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from audit_stack.lambda_code import audit_events_module, contract

if TYPE_CHECKING:
    from audit_events import integrity
else:
    integrity = audit_events_module("integrity")

__all__ = [
    "CHAIN",
    "FUTURE",
    "KINDS",
    "MALFORMED",
    "MISSING",
    "MODIFIED",
    "PENDING",
    "REJECTED_AT_SEAL",
    "SEALED_TWICE",
    "UNSEALED",
    "Finding",
    "VerifyReport",
    "digest_items",
    "kms_public_key",
    "load_public_key",
    "public_key_pem",
    "scan_records",
    "verify_log",
]

# Finding kinds, in the order the report lists them.
MALFORMED = "malformed item"
MODIFIED = "modified"
MISSING = "missing"
UNSEALED = "not in any digest"
FUTURE = "recorded in the future"
PENDING = "newer than the last seal"
SEALED_TWICE = "sealed twice"
REJECTED_AT_SEAL = "rejected by the sealer"
CHAIN = "chain"
KINDS = (
    CHAIN,
    MALFORMED,
    MODIFIED,
    MISSING,
    UNSEALED,
    FUTURE,
    SEALED_TWICE,
    REJECTED_AT_SEAL,
    PENDING,
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

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "digests": self.digests,
            "records": self.records,
            "sealed_records": self.sealed_records,
            "last_sealed_at": self.last_sealed_at,
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
) -> VerifyReport:
    """Check the chain, every digest's signature and every record against its digest.

    ``since`` selects by the signed checkpoints: the digests sealed from then and the records they
    list; a record in no digest is always checked, whatever time it claims. ``table`` and
    ``signing_key`` (name, ARN or key id), when given, must be what each digest was signed for.
    ``now`` is the check's clock (a ``recorded_at`` beyond it plus the clock margin is a finding).
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
    previous: tuple[int, str] | None = None  # (sequence, signature) of the digest before
    expected = _Expected(table=table, signing_key=signing_key)
    for sequence, item in numbered:
        digest = _checked_digest(item, sequence, previous, public_key, expected, report.findings)
        previous = (sequence, _text(item, "signature") or "")
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
    last_sealed = integrity.record_time(report.last_sealed_at) if report.last_sealed_at else None
    latest_credible = now + timedelta(seconds=contract.CLOCK_MARGIN_SECONDS)

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
        finding = _checked_record(item, key, sealed.get(key), last_sealed, latest_credible)
        if finding is not None:
            report.findings.append(finding)
    for key, (_, sequence, sealed_at) in sealed.items():
        if key not in seen and (since is None or sealed_at >= since):
            report.findings.append(
                Finding(
                    MISSING,
                    "sealed but no longer in the table",
                    subject=key[0],
                    event_key=key[1],
                    digest=sequence,
                )
            )
    report.findings.sort(key=lambda finding: (KINDS.index(finding.kind), finding.subject))
    return report


def _checked_record(
    item: dict[str, Any],
    key: tuple[str, str],
    sealed: tuple[str, int, datetime] | None,
    last_sealed: datetime | None,
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
    if last_sealed is not None and recorded_at > last_sealed:
        return Finding(
            PENDING, "recorded after the last digest", subject=subject, event_key=event_key
        )
    return Finding(
        UNSEALED,
        "written outside the recorder, or never sealed",
        subject=subject,
        event_key=event_key,
    )


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
    for name in ("body", "digest_hash", "signature"):
        value = _text(item, name)
        if value is None:
            fail(f"its {name} is missing or not a string (S)", MALFORMED)
            return None
        stored[name] = value
    body, stated_hash, signature_text = stored["body"], stored["digest_hash"], stored["signature"]
    if integrity.digest_hash(body) != stated_hash:
        fail("its content does not match its hash")
        return None
    try:
        signature = integrity.decode_signature(signature_text)
        public_key.verify(signature, stated_hash.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        fail("its signature does not verify with the signing key's public key")
        return None
    try:
        digest = integrity.parse_digest(body)
    except integrity.IntegrityFormatError as error:
        fail(str(error), MALFORMED)
        return None
    if digest.sequence != sequence:
        fail(f"it is stored as digest {sequence} but signed as digest {digest.sequence}")
    stored_sealed_at = _text(item, "sealed_at")
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


def digest_items(dynamodb: Any, digest_table: str) -> list[dict[str, Any]]:
    """Every digest of the chain, oldest first."""
    request: dict[str, Any] = {
        "TableName": digest_table,
        "KeyConditionExpression": "#c = :c",
        "ExpressionAttributeNames": {"#c": contract.DIGEST_PARTITION_KEY},
        "ExpressionAttributeValues": {":c": {"S": integrity.DIGEST_CHAIN}},
        "ConsistentRead": True,
    }
    items: list[dict[str, Any]] = []
    while True:
        page = dynamodb.query(**request)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def kms_public_key(kms: Any, key_id: str) -> ec.EllipticCurvePublicKey:
    """The signing key's public key, from KMS (kms:GetPublicKey)."""
    return load_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
