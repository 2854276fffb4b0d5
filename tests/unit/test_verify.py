"""``audit verify``'s checks, without AWS: digests signed here with a local P-256 key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from audit_stack import verify as checks
from audit_stack.lambda_code import audit_events_module, contract
from audit_stack.verify import Finding, verify_log

if TYPE_CHECKING:
    from audit_events import integrity, merkle
else:
    integrity = audit_events_module("integrity")
    merkle = audit_events_module("merkle")

KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def _record(subject: str, recorded_at: str = "2026-01-01T00:00:00.000000Z") -> dict[str, Any]:
    return integrity.with_record_hash(
        {
            contract.PARTITION_KEY: {"S": subject},
            contract.SORT_KEY: {"S": f"{recorded_at}#id-{subject}"},
            contract.RECORDED_AT_ATTRIBUTE: {"S": recorded_at},
            "details": {"M": {"n": {"N": "1"}}},
        }
    )


def _ref(item: dict[str, Any]) -> Any:
    return integrity.RecordRef(
        item[contract.PARTITION_KEY]["S"],
        item[contract.SORT_KEY]["S"],
        item[contract.RECORD_HASH_ATTRIBUTE]["S"],
    )


def _chain(
    *batches: list[dict[str, Any]],
    key: ec.EllipticCurvePrivateKey = KEY,
    version: int = integrity.DIGEST_VERSION,
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    previous = None
    tree = merkle.Frontier()
    for sequence, batch in enumerate(batches, start=1):
        refs = sorted((_ref(item) for item in batch), key=lambda ref: ref.key)
        for ref in refs:
            tree.append(integrity.record_leaf(ref.record_hash))
        digest = integrity.Digest(
            sequence=sequence,
            sealed_at=f"2026-01-0{sequence}T12:00:00.000000Z",
            table="audit",
            signing_key="arn:aws:kms:eu-west-1:111122223333:key/test",
            previous_signature=previous,
            records=tuple(refs),
            version=version,
            tree_size=tree.size,
            root_hash=tree.root().hex(),
            frontier=tuple(node.hex() for node in tree.nodes),
        )
        items.append(_signed(digest, key))
        previous = items[-1]["signature"]["S"]
    return items


def _signed(digest: Any, key: ec.EllipticCurvePrivateKey = KEY) -> dict[str, Any]:
    message = integrity.signed_message(digest)
    return integrity.digest_item(digest, key.sign(message, ec.ECDSA(hashes.SHA256())))


def _kinds(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.kind, f.subject) for f in findings]


def test_an_intact_log_checks_out() -> None:
    a, b, c = _record("a"), _record("b"), _record("c")
    report = verify_log([a, b, c], _chain([a, b], [c]), KEY.public_key())
    assert report.ok
    assert (report.digests, report.records, report.sealed_records) == (2, 3, 3)


def test_an_altered_a_deleted_and_an_inserted_record_are_each_named() -> None:
    a, b, c = _record("a"), _record("b"), _record("c")
    digests = _chain([a, b, c])
    altered = {**a, "details": {"M": {"n": {"N": "2"}}}}
    rehashed = integrity.with_record_hash({**b, "details": {"M": {"n": {"N": "3"}}}})
    inserted = _record("mallory")
    report = verify_log([altered, rehashed, inserted], digests, KEY.public_key())
    assert _kinds(report.findings) == [
        (checks.MODIFIED, "a"),
        (checks.MODIFIED, "b"),  # even with a fresh, self-consistent hash
        (checks.MISSING, "c"),
        (checks.UNSEALED, "mallory"),
    ]


def test_records_newer_than_the_last_seal_are_listed_apart() -> None:
    a = _record("a")
    late = _record("late", recorded_at="2026-02-01T00:00:00.000000Z")
    report = verify_log([a, late], _chain([a]), KEY.public_key())
    assert _kinds(report.findings) == [(checks.PENDING, "late")]
    assert not report.ok


def test_a_removed_digest_is_a_gap_in_the_chain() -> None:
    a, b, c = _record("a"), _record("b"), _record("c")
    first, _, third = _chain([a], [b], [c])
    report = verify_log([a, c], [first, third], KEY.public_key())
    assert (checks.CHAIN, "") in _kinds(report.findings)
    assert any("missing (a gap" in f.detail for f in report.findings)


def test_a_digest_signed_with_another_key_or_edited_does_not_verify() -> None:
    a, b = _record("a"), _record("b")
    first, second = _chain([a], [b])
    forged = _chain([a], [b], key=OTHER_KEY)[1]
    report = verify_log([a, b], [first, forged], KEY.public_key())
    assert [f.detail for f in report.findings if f.kind == checks.CHAIN] == [
        "its signature does not verify with the signing key's public key"
    ]
    edited = {**second, "body": {"S": second["body"]["S"].replace('"b"', '"x"')}}
    report = verify_log([a, b], [first, edited], KEY.public_key())
    assert "its content does not match its hash" in [f.detail for f in report.findings]


def test_a_digest_that_does_not_name_the_previous_signature_is_a_fork() -> None:
    a, b = _record("a"), _record("b")
    first, _ = _chain([a], [b])
    fork = _signed(
        integrity.Digest(
            2,
            "2026-01-02T12:00:00.000000Z",
            "audit",
            "k",
            "c29tZXRoaW5nIGVsc2U=",
            records=(_ref(b),),
        )
    )
    report = verify_log([a, b], [first, fork], KEY.public_key())
    assert next(f.detail for f in report.findings) == (
        "it does not follow digest 1 (a fork or a replaced digest)"
    )


def test_a_record_in_two_digests_is_reported() -> None:
    a = _record("a")
    report = verify_log([a], _chain([a], [a]), KEY.public_key())
    assert _kinds(report.findings) == [(checks.SEALED_TWICE, "a")]


def test_since_limits_the_check_to_later_digests_and_records() -> None:
    a, b = _record("a"), _record("b", recorded_at="2026-01-02T00:00:00.000000Z")
    digests = _chain([a], [b])
    # "a" was deleted, but before the period checked.
    report = verify_log([b], digests, KEY.public_key(), since=datetime(2026, 1, 2, tzinfo=UTC))
    assert report.ok
    assert report.records == 1


def test_public_keys_load_from_pem_or_der_and_must_be_elliptic_curve() -> None:
    pem = checks.public_key_pem(KEY.public_key())
    assert checks.load_public_key(pem).public_numbers() == KEY.public_key().public_numbers()
    with pytest.raises(ValueError):
        checks.load_public_key(b"not a key")


def test_a_version_1_chain_still_verifies() -> None:
    a, b, c = _record("a"), _record("b"), _record("c")
    digests = _chain([a, b], [c], version=1)
    assert "checkpoint" not in digests[0]
    assert verify_log([a, b, c], digests, KEY.public_key()).ok


def test_a_checkpoint_whose_tree_is_not_the_records_sealed_is_a_chain_finding() -> None:
    a, b = _record("a"), _record("b")
    first = _chain([a])[0]
    wrong_tree = _signed(
        integrity.Digest(
            2,
            "2026-01-02T12:00:00.000000Z",
            "audit",
            "arn:aws:kms:eu-west-1:111122223333:key/test",
            first["signature"]["S"],
            records=(_ref(b),),
            tree_size=2,
            root_hash="0" * 64,
        )
    )
    report = verify_log([a, b], [first, wrong_tree], KEY.public_key())
    assert [f.detail for f in report.findings] == [
        "its Merkle tree (size 2) is not the tree of the 2 record(s) sealed up to it"
    ]


def test_a_version_2_digest_is_signed_through_its_checkpoint_which_names_its_hash() -> None:
    a = _record("a")
    (item,) = _chain([a])
    checkpoint = integrity.parse_checkpoint(item["checkpoint"]["S"])
    assert checkpoint.digest_hash == item["digest_hash"]["S"]
    assert checkpoint.tree_size == 1
    assert checkpoint.root_hash == integrity.record_leaf(item_hash(a)).hex()
    assert checks.signature_verifies(item["checkpoint"]["S"], item, KEY.public_key())
    # A checkpoint swapped for another digest's does not describe this one.
    (other,) = _chain([_record("b")])
    swapped = {**item, "checkpoint": other["checkpoint"], "signature": other["signature"]}
    report = verify_log([a], [swapped], KEY.public_key())
    assert [f.detail for f in report.findings if f.kind == checks.CHAIN] == [
        "its signed checkpoint does not describe this digest"
    ]


def item_hash(item: dict[str, Any]) -> str:
    return str(item[contract.RECORD_HASH_ATTRIBUTE]["S"])
