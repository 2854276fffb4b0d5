"""The integrity format: a record's canonical content and hash, digests, where bodies live."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from audit_events import integrity
from audit_events.integrity import Digest, IntegrityFormatError, RecordRef

ITEM: dict[str, Any] = {
    "subject": {"S": "john.doe@mail.com"},
    "event_key": {"S": "2025-03-14T09:26:53.412907Z#9f1c2b4e-3d5a-4c8e-9b7f-2a6d1e0c5b3a"},
    "schema_version": {"N": "1"},
    "details": {"M": {"email": {"S": "john.doe@mail.com"}, "n": {"N": "1.50"}}},
}


def test_canonical_content_is_sorted_compact_utf8_json_of_the_typed_attributes() -> None:
    assert integrity.canonical_record(ITEM) == (
        b'{"details":{"M":{"email":{"S":"john.doe@mail.com"},"n":{"N":"1.5"}}},'
        b'"event_key":{"S":"2025-03-14T09:26:53.412907Z#9f1c2b4e-3d5a-4c8e-9b7f-2a6d1e0c5b3a"},'
        b'"schema_version":{"N":"1"},"subject":{"S":"john.doe@mail.com"}}'
    )
    assert (
        integrity.record_hash(ITEM) == hashlib.sha256(integrity.canonical_record(ITEM)).hexdigest()
    )


def test_the_hash_does_not_cover_itself_and_changes_with_any_attribute() -> None:
    sealed = integrity.with_record_hash(dict(ITEM))
    assert (
        integrity.record_hash(sealed) == sealed["record_hash"]["S"] == integrity.record_hash(ITEM)
    )
    altered = {**ITEM, "schema_version": {"N": "2"}}
    assert integrity.record_hash(altered) != integrity.record_hash(ITEM)
    added = {**ITEM, "note": {"S": ""}}
    assert integrity.record_hash(added) != integrity.record_hash(ITEM)


@pytest.mark.parametrize(
    ("written", "returned"),
    [("1.50", "1.5"), ("100", "1E+2"), ("0.0", "-0"), ("-12.340", "-12.34"), ("1e-3", "0.001")],
)
def test_numbers_hash_the_same_however_dynamodb_spells_them(written: str, returned: str) -> None:
    assert integrity.record_hash({"n": {"N": written}}) == integrity.record_hash(
        {"n": {"N": returned}}
    )


def test_sets_are_unordered_and_binary_hashes_as_base64() -> None:
    assert integrity.record_hash({"s": {"SS": ["b", "a"]}}) == integrity.record_hash(
        {"s": {"SS": ["a", "b"]}}
    )
    assert integrity.record_hash({"b": {"B": b"\x00\x01"}}) == integrity.record_hash(
        {"b": {"B": "AAE="}}
    )


def test_an_attribute_value_of_no_known_type_is_refused() -> None:
    with pytest.raises(IntegrityFormatError, match="unknown attribute type"):
        integrity.record_hash({"x": {"Q": "1"}})


def test_a_digest_has_one_canonical_text_whatever_the_order_of_its_records() -> None:
    a, b = RecordRef("a", "1", "x" * 64), RecordRef("b", "2", "y" * 64)
    first = Digest(1, "2025-01-01T00:00:00.000000Z", "t", "key", None, records=(a, b))
    second = Digest(1, "2025-01-01T00:00:00.000000Z", "t", "key", None, records=(b, a))
    assert first.body() == second.body()
    assert integrity.parse_digest(first.body()).body() == first.body()
    assert integrity.digest_hash(first.body()) == hashlib.sha256(first.body().encode()).hexdigest()


def test_a_digest_item_stores_the_signed_text_its_hash_and_signature() -> None:
    digest = Digest(7, "2025-01-01T00:00:00.000000Z", "t", "key", "prev")
    item = integrity.digest_item(digest, b"\x01\x02")
    assert item["chain"] == {"S": integrity.DIGEST_CHAIN}
    assert item["sequence"] == {"N": "7"}
    assert item["digest_hash"] == {"S": integrity.digest_hash(item["body"]["S"])}
    assert integrity.decode_signature(item["signature"]["S"]) == b"\x01\x02"


def test_a_digest_item_with_a_body_object_points_to_it_instead_of_holding_the_body() -> None:
    digest = Digest(7, "2025-01-01T00:00:00.000000Z", "t", "key", "prev")
    key = integrity.body_key("t", 7, integrity.digest_hash(digest.body()))
    item = integrity.digest_item(digest, b"\x01\x02", body_object=f"anchors/{key}")
    assert "body" not in item
    assert item["body_object"] == {"S": f"anchors/{key}"}
    # The hash of the body it points to is still in the item (and signed, in the checkpoint).
    assert item["digest_hash"] == {"S": integrity.digest_hash(digest.body())}
    assert integrity.digest_body_location(item) == ("anchors", key)
    assert integrity.digest_body_location(integrity.digest_item(digest, b"\x01")) is None


def test_a_body_key_sits_beside_the_tables_checkpoints_named_by_sequence_and_hash() -> None:
    key = integrity.body_key("audit-events", 3, "ab" * 32)
    assert key == "checkpoints/audit-events/bodies/00000000000000000003-" + "ab" * 32 + ".json"
    # Two runs racing for one sequence write two objects, never one over the other.
    assert integrity.body_key("audit-events", 3, "cd" * 32) != key
    assert not key.startswith(integrity.anchor_key("audit-events", 3))


@pytest.mark.parametrize("stored", [{}, {"body_object": {"S": "no-slash"}}, {"body_object": "x"}])
def test_a_digest_item_without_a_usable_body_object_has_no_body_location(
    stored: dict[str, Any],
) -> None:
    assert integrity.digest_body_location(stored) is None


def test_a_version_2_digest_signs_a_checkpoint_that_names_its_tree_and_its_hash() -> None:
    digest = Digest(
        3, "2025-01-01T00:00:00.000000Z", "t", "key", "prev", tree_size=5, root_hash="ab" * 32
    )
    checkpoint = integrity.parse_checkpoint(integrity.signed_text(digest))
    assert (checkpoint.sequence, checkpoint.tree_size, checkpoint.root_hash) == (3, 5, "ab" * 32)
    assert checkpoint.digest_hash == integrity.digest_hash(digest.body())
    assert checkpoint.previous_signature == "prev"
    expected = hashlib.sha256(checkpoint.body().encode()).hexdigest().encode("ascii")
    assert integrity.signed_message(digest) == expected
    item = integrity.digest_item(digest, b"\x01")
    signed = integrity.signed_checkpoint_of(item)
    assert signed is not None and signed.checkpoint == checkpoint
    assert integrity.parse_signed_checkpoint(signed.document()) == signed
    assert integrity.anchor_key("t", 3) == "checkpoints/t/00000000000000000003.json"


@pytest.mark.parametrize(
    "change",
    [
        lambda text: text.replace('"tree_size":5', '"tree_size": 5'),  # not canonical
        lambda text: text.replace('"tree_size":5', '"tree_size":-1'),
        lambda text: text.replace('"tree_size":5', '"tree_size":true'),
        lambda text: text.replace("ab" * 32, "AB" * 32),
        lambda text: text.replace('"kind":"audit-log-checkpoint"', '"kind":"other"'),
        lambda text: text.replace('"version":1', '"version":9'),
    ],
)
def test_anything_but_a_canonical_checkpoint_is_refused(change: Any) -> None:
    digest = Digest(
        3, "2025-01-01T00:00:00.000000Z", "t", "key", None, tree_size=5, root_hash="ab" * 32
    )
    text = digest.checkpoint().body()
    with pytest.raises(integrity.IntegrityFormatError):
        integrity.parse_checkpoint(change(text))


def test_a_record_leaf_is_the_rfc_leaf_hash_of_the_record_hash_bytes() -> None:
    record_hash = hashlib.sha256(b"x").hexdigest()
    assert (
        integrity.record_leaf(record_hash)
        == hashlib.sha256(b"\x00" + bytes.fromhex(record_hash)).digest()
    )
    with pytest.raises(integrity.IntegrityFormatError):
        integrity.record_leaf("not-a-hash")


# DynamoDB keeps 38 significant digits; Python's default Decimal context keeps 28.
@pytest.mark.parametrize(
    ("stored", "canonical"),
    [
        ("1234567890123456789012345678", "1234567890123456789012345678"),  # 28 digits
        ("12345678901234567890123456789", "12345678901234567890123456789"),  # 29 digits
        (
            "1.2345678901234567890123456789012345678E+37",  # 38 digits
            "12345678901234567890123456789012345678",
        ),
        ("0.12345678901234567890123456789012345670", "0.1234567890123456789012345678901234567"),
        ("-9.9999999999999999999999999999999999999E+125", "-" + "9" * 38 + "0" * 88),
        ("1E-130", "0." + "0" * 129 + "1"),
    ],
)
def test_numbers_keep_every_one_of_dynamodbs_38_digits(stored: str, canonical: str) -> None:
    assert integrity.canonical_number(stored) == canonical


@pytest.mark.parametrize("digits", [28, 29, 38])
def test_a_change_in_the_last_of_up_to_38_digits_changes_the_record_hash(digits: int) -> None:
    number = "1" * digits
    changed = "1" * (digits - 1) + "2"
    assert integrity.record_hash({"n": {"N": number}}) != integrity.record_hash(
        {"n": {"N": changed}}
    )
    # Known answer: the hash is of the exact digits, whatever Python's default precision.
    assert (
        integrity.record_hash({"n": {"N": number}})
        == hashlib.sha256(b'{"n":{"N":"' + number.encode() + b'"}}').hexdigest()
    )
