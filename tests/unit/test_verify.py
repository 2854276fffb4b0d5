"""``audit verify``'s checks, without AWS: digests signed here with a local P-256 key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


def test_a_record_in_no_digest_is_pending_within_the_seal_window_and_a_finding_after_it() -> None:
    """The table's stream brings a record to the sealer within seal_interval: until then it is
    on its way (listed, not a failure, whether or not a digest was written since); after the
    window (seal_interval + the clock margin) a record in no digest is a finding."""
    a = _record("a")
    late = _record("late", recorded_at="2026-02-01T00:00:00.000000Z")
    digests = _chain([a])
    window = timedelta(minutes=10)
    for now, kind, ok in [
        (datetime(2026, 2, 1, 0, 9, tzinfo=UTC), checks.PENDING, True),
        (datetime(2026, 2, 1, 0, 11, tzinfo=UTC), checks.UNSEALED, False),
    ]:
        report = verify_log([a, late], digests, KEY.public_key(), now=now, seal_window=window)
        assert _kinds(report.findings) == [(kind, "late")]
        assert report.ok is ok
    # Recorded before the newest digest was written, and still within the window: pending too
    # (the stream batch that digest sealed had been cut before the record arrived).
    cut = _record("cut", recorded_at="2026-01-02T11:59:00.000000Z")
    after = _chain([a], [])  # digest 2, empty, sealed at 2026-01-02T12:00Z
    report = verify_log(
        [a, cut], after, KEY.public_key(), now=datetime(2026, 1, 2, 12, 5, tzinfo=UTC)
    )
    assert _kinds(report.findings) == [(checks.PENDING, "cut")]
    assert report.ok


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


# -- verify cannot be steered ----------------------------------------------------------------

SIGNING_KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/test"
NOW = datetime(2026, 1, 5, tzinfo=UTC)


def test_since_checks_a_record_in_no_digest_whatever_time_it_claims() -> None:
    a, b = _record("a"), _record("b", recorded_at="2026-01-02T00:00:00.000000Z")
    inserted = _record("mallory", recorded_at="2020-01-01T00:00:00.000000Z")
    report = verify_log(
        [a, b, inserted], _chain([a], [b]), KEY.public_key(), since=datetime(2021, 1, 1, tzinfo=UTC)
    )
    assert _kinds(report.findings) == [(checks.UNSEALED, "mallory")]


def test_since_selects_records_by_the_digest_that_sealed_them_not_by_their_own_time() -> None:
    a = _record("a")
    old_claim = _record("b", recorded_at="2020-01-01T00:00:00.000000Z")  # sealed on 2026-01-02
    digests = _chain([a], [old_claim])
    altered = {**old_claim, "details": {"M": {"n": {"N": "9"}}}}
    since = datetime(2026, 1, 2, tzinfo=UTC)
    report = verify_log([a, altered], digests, KEY.public_key(), since=since)
    assert _kinds(report.findings) == [(checks.MODIFIED, "b")]
    assert report.records == 1  # "a", sealed by digest 1 before the period, is not checked
    # A record sealed before the period is out of it, whatever later time it claims.
    late_claim = _record("c", recorded_at="2026-03-01T00:00:00.000000Z")
    digests = _chain([late_claim], [a])
    edited = {**late_claim, "details": {"M": {"n": {"N": "9"}}}}
    assert verify_log([edited, a], digests, KEY.public_key(), since=since).ok


def test_a_record_claiming_a_time_after_the_checks_clock_is_a_finding_not_pending() -> None:
    a = _record("a")
    soon = _record("soon", recorded_at="2026-01-05T00:04:00.000000Z")  # within the clock margin
    future = _record("future", recorded_at="2099-01-01T00:00:00.000000Z")
    report = verify_log([a, soon, future], _chain([a]), KEY.public_key(), now=NOW)
    assert _kinds(report.findings) == [(checks.FUTURE, "future"), (checks.PENDING, "soon")]
    (finding,) = [f for f in report.findings if f.kind == checks.FUTURE]
    assert "2099-01-01T00:00:00.000000Z" in finding.detail
    beyond_margin = _record("beyond", recorded_at="2026-01-05T00:06:00.000000Z")
    report = verify_log([a, beyond_margin], _chain([a]), KEY.public_key(), now=NOW)
    assert _kinds(report.findings) == [(checks.FUTURE, "beyond")]


@pytest.mark.parametrize(
    ("attribute", "stored", "detail"),
    [
        ("sealed_at", {"S": "2020-01-01T00:00:00.000000Z"}, "its stored sealed_at '2020-01-01T"),
        ("sealed_at", None, "its stored sealed_at (missing) is not the signed 2026-01-02T12"),
        ("record_count", {"N": "7"}, "its stored record_count {'N': '7'} is not the signed 1"),
        ("record_count", {"S": "1"}, "its stored record_count"),
        ("record_count", None, "its stored record_count (missing) is not the signed 1"),
    ],
)
def test_a_digests_stored_fields_must_say_what_its_signed_body_says(
    attribute: str, stored: dict[str, str] | None, detail: str
) -> None:
    a, b = _record("a"), _record("b")
    first, second = _chain([a], [b])
    edited = {key: value for key, value in second.items() if key != attribute}
    if stored is not None:
        edited[attribute] = stored
    report = verify_log([a, b], [first, edited], KEY.public_key())
    assert [(f.kind, f.digest) for f in report.findings] == [(checks.CHAIN, 2)]
    assert report.findings[0].detail.startswith(detail)


def test_a_digest_signed_for_another_table_or_key_is_a_finding() -> None:
    a = _record("a")
    digests = _chain([a])
    assert verify_log([a], digests, KEY.public_key(), table="audit", signing_key=SIGNING_KEY_ARN).ok
    assert verify_log([a], digests, KEY.public_key(), table="audit", signing_key="test").ok
    report = verify_log(
        [a], digests, KEY.public_key(), table="other", signing_key="arn:aws:kms:x:1:key/other"
    )
    assert [f.detail for f in report.findings] == [
        "it was signed for table 'audit', not 'other'",
        f"it names signing key {SIGNING_KEY_ARN!r}, not 'arn:aws:kms:x:1:key/other'",
    ]


def _digest_with(**changes: dict[str, str] | None) -> dict[str, Any]:
    (item,) = _chain([_record("a")])
    for name, value in changes.items():
        if value is None:
            del item[name]
        else:
            item[name] = value
    return item


@pytest.mark.parametrize(
    ("item", "detail"),
    [
        (_digest_with(sequence={"N": "1.5"}), "a digest item whose sequence {'N': '1.5'}"),
        (_digest_with(sequence={"S": "1"}), "a digest item whose sequence {'S': '1'}"),
        (_digest_with(sequence={"N": "0"}), "a digest item whose sequence {'N': '0'}"),
        (_digest_with(sequence=None), "a digest item whose sequence (missing)"),
        (_digest_with(body=None), "its body is missing or not a string (S)"),
        (_digest_with(body={"N": "1"}), "its body is missing or not a string (S)"),
        (_digest_with(signature={"B": "AAE="}), "its signature is missing or not a string (S)"),
        (_digest_with(digest_hash=None), "its digest_hash is missing or not a string (S)"),
    ],
)
def test_a_malformed_digest_item_is_a_finding_not_a_traceback(
    item: dict[str, Any], detail: str
) -> None:
    report = verify_log([], [item], KEY.public_key())
    assert [f.kind for f in report.findings] == [checks.MALFORMED]
    assert report.findings[0].detail.startswith(detail)


def test_a_digest_whose_signed_body_is_not_a_digest_is_a_finding() -> None:
    body = '{"version": 1, "sequence": "one"}'
    item = {
        **_digest_with(),
        "body": {"S": body},
        "digest_hash": {"S": integrity.digest_hash(body)},
    }
    item.pop("checkpoint", None)  # signed as version 1 signs: the body itself
    message = integrity.digest_hash(body).encode("ascii")
    item["signature"] = {
        "S": integrity.encode_signature(KEY.sign(message, ec.ECDSA(hashes.SHA256())))
    }
    report = verify_log([], [item], KEY.public_key())
    assert [f.kind for f in report.findings] == [checks.MALFORMED]
    assert report.findings[0].detail.startswith("not a digest")


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({contract.RECORD_HASH_ATTRIBUTE: {"N": "1"}}, "its record_hash is not a string (S)"),
        ({contract.RECORDED_AT_ATTRIBUTE: {"N": "1"}}, "its recorded_at is not a string (S)"),
        ({"details": {"Q": "1"}}, "its content is not DynamoDB attribute values"),
        ({"details": {"N": "NaN"}}, "its content is not DynamoDB attribute values"),
        ({"details": "text"}, "its content is not DynamoDB attribute values"),
        ({contract.SORT_KEY: {"N": "1"}}, "a record whose subject or event_key is missing"),
    ],
)
def test_a_malformed_record_is_one_finding_not_a_traceback(
    change: dict[str, Any], detail: str
) -> None:
    a = _record("a")
    report = verify_log([{**a, **change}], _chain([a]), KEY.public_key())
    malformed = [f for f in report.findings if f.kind == checks.MALFORMED]
    assert [f.detail[: len(detail)] for f in malformed] == [detail]
    # Sealed, so found by key, it is not also reported modified or missing (unless keyless).
    assert len(report.findings) == (2 if contract.SORT_KEY in change else 1)


def test_a_record_without_its_subject_is_a_finding_not_a_traceback() -> None:
    a = _record("a")
    keyless = {k: v for k, v in a.items() if k != contract.PARTITION_KEY}
    report = verify_log([keyless], [], KEY.public_key())
    assert [f.kind for f in report.findings] == [checks.MALFORMED]
