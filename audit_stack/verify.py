"""``audit verify``'s checks: the digest chain, each digest's signature, each record's hash.

:func:`verify_log` is pure (records, digest items and a public key in, findings out), so the
checks are tested without AWS; :func:`fetch_log` reads what it needs from DynamoDB and KMS. The
record and digest format comes from the Lambda code's ``audit_events.integrity``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from audit_stack.lambda_code import audit_events_module, contract

if TYPE_CHECKING:
    from audit_events import integrity, merkle
else:
    integrity = audit_events_module("integrity")
    merkle = audit_events_module("merkle")

__all__ = [
    "CHAIN",
    "KINDS",
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
MODIFIED = "modified"
MISSING = "missing"
UNSEALED = "not in any digest"
PENDING = "newer than the last seal"
SEALED_TWICE = "sealed twice"
REJECTED_AT_SEAL = "rejected by the sealer"
CHAIN = "chain"
KINDS = (CHAIN, MODIFIED, MISSING, UNSEALED, SEALED_TWICE, REJECTED_AT_SEAL, PENDING)


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
) -> VerifyReport:
    """Check the chain, every digest's signature and every record against its digest."""
    report = VerifyReport()
    ordered = sorted(digest_items, key=lambda item: int(item[contract.DIGEST_SORT_KEY]["N"]))
    report.digests = len(ordered)
    sealed: dict[tuple[str, str], tuple[str, int, datetime]] = {}
    previous: tuple[int, str] | None = None  # (sequence, signature) of the digest before
    tree: merkle.Frontier | None = merkle.Frontier()  # None once a digest cannot be read
    for item in ordered:
        sequence = int(item[contract.DIGEST_SORT_KEY]["N"])
        digest = _checked_digest(item, sequence, previous, public_key, report.findings)
        previous = (sequence, item.get("signature", {}).get("S", ""))
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

    seen: set[tuple[str, str]] = set()
    for item in records:
        key = (item[contract.PARTITION_KEY]["S"], item[contract.SORT_KEY]["S"])
        seen.add(key)
        recorded_at = integrity.record_time(
            item.get(contract.RECORDED_AT_ATTRIBUTE, {}).get("S", "")
        )
        if since is not None and recorded_at < since and key not in sealed:
            continue
        if key in sealed and since is not None and sealed[key][2] < since:
            continue
        report.records += 1
        content_hash = integrity.record_hash(item)
        stated_hash = item.get(contract.RECORD_HASH_ATTRIBUTE, {}).get("S")
        if key in sealed:
            sealed_hash, sequence, _ = sealed[key]
            if content_hash != sealed_hash or stated_hash != sealed_hash:
                report.findings.append(
                    Finding(
                        MODIFIED,
                        "differs from what was sealed",
                        subject=key[0],
                        event_key=key[1],
                        digest=sequence,
                    )
                )
        elif last_sealed is not None and recorded_at > last_sealed:
            report.findings.append(
                Finding(PENDING, "recorded after the last digest", subject=key[0], event_key=key[1])
            )
        else:
            report.findings.append(
                Finding(
                    UNSEALED,
                    "written outside the recorder, or never sealed",
                    subject=key[0],
                    event_key=key[1],
                )
            )
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


def _checked_digest(
    item: dict[str, Any],
    sequence: int,
    previous: tuple[int, str] | None,
    public_key: ec.EllipticCurvePublicKey,
    findings: list[Finding],
) -> Any:
    """The digest in ``item`` if its hash, signature and link check out; findings otherwise."""

    def fail(detail: str) -> None:
        findings.append(Finding(CHAIN, detail, digest=sequence))

    expected_previous = previous[0] + 1 if previous else 1
    if sequence != expected_previous:
        fail(f"digests {expected_previous}..{sequence - 1} are missing (a gap in the chain)")
    body = item.get("body", {}).get("S", "")
    stated_hash = item.get("digest_hash", {}).get("S", "")
    if integrity.digest_hash(body) != stated_hash:
        fail("its content does not match its hash")
        return None
    # Version 2 signs the checkpoint (which names the digest's hash); version 1 the digest.
    signed = integrity.signed_checkpoint_of(item)
    if not signature_verifies(signed.text if signed else body, item, public_key):
        fail("its signature does not verify with the signing key's public key")
        return None
    try:
        digest = integrity.parse_digest(body)
        checkpoint = integrity.parse_checkpoint(signed.text) if signed else None
    except integrity.IntegrityFormatError as error:
        fail(str(error))
        return None
    if digest.version >= 2 and checkpoint != digest.checkpoint():
        fail("its signed checkpoint does not describe this digest")
        return None
    if digest.version < 2 and signed is not None:
        fail("a version 1 digest stored with a checkpoint")
        return None
    if digest.sequence != sequence:
        fail(f"it is stored as digest {sequence} but signed as digest {digest.sequence}")
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
    encoded = item if isinstance(item, str) else item.get("signature", {}).get("S", "")
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
