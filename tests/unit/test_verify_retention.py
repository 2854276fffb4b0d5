"""``audit verify`` and retention, without AWS: a sealed record gone after the expiry its
(signed) digest states is expired under the policy, never missing; gone before, it is missing;
digests of version 3 carry each record's expiry, older digests still verify."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from audit_stack import verify as checks
from audit_stack.lambda_code import audit_events_module, contract
from audit_stack.verify import verify_log

if TYPE_CHECKING:
    from audit_events import integrity, merkle
else:
    integrity = audit_events_module("integrity")
    merkle = audit_events_module("merkle")

KEY = ec.generate_private_key(ec.SECP256R1())
RECORDED_AT = "2026-01-01T00:00:00.000000Z"
EXPIRES = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp())  # 31 days after RECORDED_AT
BEFORE_EXPIRY = datetime(2026, 1, 20, tzinfo=UTC)
AFTER_EXPIRY = datetime(2026, 2, 3, tzinfo=UTC)


def _record(subject: str, expires_at: int | None = EXPIRES) -> dict[str, Any]:
    item: dict[str, Any] = {
        contract.PARTITION_KEY: {"S": subject},
        contract.SORT_KEY: {"S": f"{RECORDED_AT}#id-{subject}"},
        contract.RECORDED_AT_ATTRIBUTE: {"S": RECORDED_AT},
        "details": {"M": {}},
    }
    if expires_at is not None:
        item[contract.EXPIRES_AT_ATTRIBUTE] = {"N": str(expires_at)}
    return integrity.with_record_hash(item)


def _ref(item: dict[str, Any], expires_at: int | None = None) -> Any:
    """The sealer's reference to ``item``: its key, hash and the expiry read from it (or
    ``expires_at``, for a sealer that signs another one)."""
    return integrity.RecordRef(
        item[contract.PARTITION_KEY]["S"],
        item[contract.SORT_KEY]["S"],
        item[contract.RECORD_HASH_ATTRIBUTE]["S"],
        RECORDED_AT,
        integrity.expires_at_of(item) if expires_at is None else expires_at,
    )


def _digests(*batches: list[Any], version: int = integrity.DIGEST_VERSION) -> list[dict[str, Any]]:
    """A signed chain, one digest per batch of RecordRefs, sealed a day apart from Jan 2."""
    items: list[dict[str, Any]] = []
    previous = None
    tree = merkle.Frontier()
    for sequence, refs in enumerate(batches, start=1):
        for ref in sorted(refs, key=lambda ref: ref.key):
            tree.append(integrity.record_leaf(ref.record_hash))
        digest = integrity.Digest(
            sequence=sequence,
            sealed_at=f"2026-01-0{sequence + 1}T12:00:00.000000Z",
            table="audit",
            signing_key="arn:aws:kms:eu-west-1:111122223333:key/test",
            previous_signature=previous,
            records=tuple(refs),
            version=version,
            tree_size=tree.size,
            root_hash=tree.root().hex(),
            frontier=tuple(node.hex() for node in tree.nodes),
        )
        signature = KEY.sign(integrity.signed_message(digest), ec.ECDSA(hashes.SHA256()))
        items.append(integrity.digest_item(digest, signature))
        previous = items[-1]["signature"]["S"]
    return items


def _kinds(report: checks.VerifyReport) -> list[tuple[str, str]]:
    return [(finding.kind, finding.subject) for finding in report.findings]


def test_a_record_gone_after_its_sealed_expiry_is_expired_under_the_policy_and_not_a_failure() -> (
    None
):
    kept, expired = _record("kept"), _record("expired")
    digests = _digests([_ref(kept), _ref(expired)])

    report = verify_log([kept], digests, KEY.public_key(), now=AFTER_EXPIRY)

    assert _kinds(report) == [(checks.EXPIRED, "expired")]
    assert report.ok
    assert report.findings[0].detail == "removed after its sealed expires_at 2026-02-01T00:00:00Z"
    assert report.findings[0].digest == 1
    summary = report.to_dict()
    assert (summary["ok"], summary["expired_records"]) == (True, 1)
    assert summary["findings"][0]["kind"] == "expired under the policy"
    json.dumps(summary)  # what --json prints


def test_a_record_removed_before_its_sealed_expiry_is_missing_and_fails() -> None:
    early = _record("early")
    report = verify_log([], _digests([_ref(early)]), KEY.public_key(), now=BEFORE_EXPIRY)
    assert _kinds(report) == [(checks.MISSING, "early")]
    assert report.findings[0].detail == (
        "sealed but no longer in the table, before its sealed expires_at 2026-02-01T00:00:00Z"
    )
    assert not report.ok
    assert report.to_dict()["expired_records"] == 0


def test_a_record_without_an_expiry_is_missing_whenever_it_is_removed() -> None:
    forever = _record("forever", expires_at=None)
    report = verify_log([], _digests([_ref(forever)]), KEY.public_key(), now=AFTER_EXPIRY)
    assert _kinds(report) == [(checks.MISSING, "forever")]
    assert report.findings[0].detail == "sealed but no longer in the table"


def test_a_version_2_digest_knows_no_expiry_so_a_removal_it_sealed_stays_missing() -> None:
    record = _record("old-format")
    digests = _digests([_ref(record)], version=2)
    body = json.loads(digests[0]["body"]["S"])
    assert body["records"] == [
        [record["subject"]["S"], record["event_key"]["S"], record["record_hash"]["S"]]
    ]
    assert verify_log([record], digests, KEY.public_key(), now=AFTER_EXPIRY).ok
    report = verify_log([], digests, KEY.public_key(), now=AFTER_EXPIRY)
    assert _kinds(report) == [(checks.MISSING, "old-format")]


def test_an_expired_record_still_in_the_table_checks_out_as_any_record() -> None:
    # DynamoDB deletes expired items within days, not at once: until then they read as usual.
    record = _record("lingering")
    assert verify_log([record], _digests([_ref(record)]), KEY.public_key(), now=AFTER_EXPIRY).ok


def test_a_life_extended_or_shortened_in_the_table_is_a_modified_record() -> None:
    record = _record("a")
    digests = _digests([_ref(record)])
    for expiry in (EXPIRES + 86_400 * 365, EXPIRES - 86_400 * 20):
        changed = integrity.with_record_hash(
            {**record, contract.EXPIRES_AT_ATTRIBUTE: {"N": str(expiry)}}
        )
        report = verify_log([changed], digests, KEY.public_key(), now=BEFORE_EXPIRY)
        assert _kinds(report) == [(checks.MODIFIED, "a")]


def test_a_digest_that_signs_another_expiry_than_the_records_own_is_a_modified_record() -> None:
    # A sealer that signed a shorter life (to pass off an early removal as expiry) is caught
    # while the record is still there.
    record = _record("a")
    digests = _digests([_ref(record, expires_at=EXPIRES - 86_400 * 30)])
    report = verify_log([record], digests, KEY.public_key(), now=BEFORE_EXPIRY)
    assert _kinds(report) == [(checks.MODIFIED, "a")]
    assert report.findings[0].detail == "its expires_at is not the one its digest sealed"


def test_since_leaves_out_expiries_of_records_sealed_before_the_period() -> None:
    first, second = _record("first"), _record("second")
    digests = _digests([_ref(first)], [_ref(second)])
    since = datetime(2026, 1, 3, tzinfo=UTC)  # digest 2 was sealed at noon that day
    report = verify_log([], digests, KEY.public_key(), now=AFTER_EXPIRY, since=since)
    assert _kinds(report) == [(checks.EXPIRED, "second")]


def test_an_expiry_is_passed_only_once_the_clock_is_beyond_it_as_dynamodbs_ttl_decides() -> None:
    # TTL deletes an item when its expiry is less than the current time, never at it.
    record = _record("edge")
    digests = _digests([_ref(record)])
    at_expiry = datetime.fromtimestamp(EXPIRES, UTC)
    assert _kinds(verify_log([], digests, KEY.public_key(), now=at_expiry)) == [
        (checks.MISSING, "edge")
    ]
    one_second_after = at_expiry + timedelta(seconds=1)
    assert _kinds(verify_log([], digests, KEY.public_key(), now=one_second_after)) == [
        (checks.EXPIRED, "edge")
    ]


# -- the digest body ----------------------------------------------------------------------------


def test_a_version_3_digest_lists_each_records_expiry_and_reads_back_the_same() -> None:
    kept, forever = _record("kept"), _record("forever", expires_at=None)
    (item,) = _digests([_ref(kept), _ref(forever)])
    body = item["body"]["S"]
    assert json.loads(body)["records"] == [
        [forever["subject"]["S"], forever["event_key"]["S"], forever["record_hash"]["S"], None],
        [kept["subject"]["S"], kept["event_key"]["S"], kept["record_hash"]["S"], EXPIRES],
    ]
    digest = integrity.parse_digest(body)
    assert digest.body() == body
    assert {ref.subject: ref.expires_at for ref in digest.records} == {
        "kept": EXPIRES,
        "forever": None,
    }


@pytest.mark.parametrize("expiry", ["1767225600", -1, 1.5, True])
def test_a_version_3_digest_whose_expiry_is_not_whole_epoch_seconds_is_not_a_digest(
    expiry: Any,
) -> None:
    (item,) = _digests([_ref(_record("a"))])
    document = json.loads(item["body"]["S"])
    document["records"][0][3] = expiry
    with pytest.raises(integrity.IntegrityFormatError, match="not a digest"):
        integrity.parse_digest(json.dumps(document))


def test_a_version_3_record_entry_without_its_expiry_is_not_a_digest() -> None:
    (item,) = _digests([_ref(_record("a"))])
    document = json.loads(item["body"]["S"])
    document["records"][0] = document["records"][0][:3]
    with pytest.raises(integrity.IntegrityFormatError, match="not a digest"):
        integrity.parse_digest(json.dumps(document))


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ({"N": "1767225600"}, 1_767_225_600),
        ({"S": "1767225600"}, None),  # DynamoDB's TTL ignores a non-number too
        ({"N": "1.5"}, None),
        ({"N": "-5"}, None),
        (None, None),
    ],
)
def test_an_items_expiry_is_its_whole_number_expires_at(
    attribute: dict[str, str] | None, expected: int | None
) -> None:
    item = {} if attribute is None else {contract.EXPIRES_AT_ATTRIBUTE: attribute}
    assert integrity.expires_at_of(item) == expected
