"""Known answers for the pseudonym and the idempotent event id: the definitions are pinned.

Every record ever written is found by recomputing these values, so a change to either derivation
(its context string, its encoding, its normalisation, its bit layout) would leave older records
unfindable while a test computing its expectation with the same code would still pass. Here each
expectation is written out twice: computed in the test from the documented formula with
``hmac``/``hashlib`` directly (the README's text), and as a literal hex string that nobody
recomputes.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from typing import NamedTuple

import pytest

from audit_events.event import build_account_deleted_event
from audit_events.subject import (
    idempotent_event_id,
    normalize_email,
    pseudonymous_subject,
    rekeyed_event_id,
)

SECRET = b"known-answer secret: not a real key"
KEY = "order-42"


class Vector(NamedTuple):
    sent: str
    normalized: str
    pseudonym: str
    event_id: str
    """The idempotent event id for key ``order-42`` under ``SECRET``."""
    clear_event_id: str
    """The same with no secret (``subject_in_clear``)."""


VECTORS = {
    "ascii": Vector(
        "john.doe@mail.com",
        "john.doe@mail.com",
        "4c3dfcbac416fd2f21a8002f7222ab217fa2c5feca8b9ea899e94df9635cab6b",
        "eb1d01d1-70bf-8db5-aa17-0583598a119e",
        "ee7f9293-6e52-829d-960b-b0df4badeb30",
    ),
    "mixed case": Vector(
        "John.Doe@Mail.COM",
        "john.doe@mail.com",
        "4c3dfcbac416fd2f21a8002f7222ab217fa2c5feca8b9ea899e94df9635cab6b",
        "eb1d01d1-70bf-8db5-aa17-0583598a119e",
        "ee7f9293-6e52-829d-960b-b0df4badeb30",
    ),
    "idn": Vector(
        "Jürgen@Bücher.Example",
        "jürgen@xn--bcher-kva.example",
        "b52dfc122bbfd094fba80a8e2e42be558c606e7758436e0853ad0f55b179b86d",
        "2deef390-b5a1-8923-a852-f39b2144bf81",
        "80f50c36-1d91-87d1-944a-db1e99b792d6",
    ),
    "idn already punycode": Vector(
        "jürgen@xn--bcher-kva.example",
        "jürgen@xn--bcher-kva.example",
        "b52dfc122bbfd094fba80a8e2e42be558c606e7758436e0853ad0f55b179b86d",
        "2deef390-b5a1-8923-a852-f39b2144bf81",
        "80f50c36-1d91-87d1-944a-db1e99b792d6",
    ),
    "unicode local part and domain": Vector(
        "用户@例子.广告",
        "用户@xn--fsqu00a.xn--4rr70v",
        "4aaea28b0ac6b3094b6ef4ad337bc113a67cc9d29446aed5bdda451fda1d7c5f",
        "a766afa9-94b8-8c51-9992-1c9442f8cec2",
        "de92e3a2-ac34-8c40-9628-8cc0cc498b61",
    ),
    "sharp s under IDNA 2008, not 2003's fass.de": Vector(
        "Strauß@Faß.DE",
        "strauß@xn--fa-hia.de",
        "f97ef2165826b6995e7a05c04bf2c508b308c98dddbd2f0286fb2d928da0daeb",
        "0f188eab-6e4c-8279-b098-cd9cb9ba0a09",
        "7883c3ea-6b39-89ac-adee-cc96c30d4e2b",
    ),
    "decomposed (NFD) capitals": Vector(
        "E\u0301lodie.Martin@CAFE\u0301.fr",
        "élodie.martin@xn--caf-dma.fr",
        "94c14d073078e8fb7b128be86c9adfb089840430fdb64c71a601d57b0b807f98",
        "b627a234-f809-8c6e-be8f-4464547382b6",
        "e39079ef-197b-899b-9d13-d7e42d0e89fa",
    ),
}


def documented_pseudonym(normalized: str, secret: bytes) -> str:
    """README: ``HMAC-SHA-256(secret, b"audit-pipeline/subject/v1\\x00" + UTF-8(address))``."""
    message = b"audit-pipeline/subject/v1\x00" + normalized.encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def documented_event_id(normalized: str, key: str, secret: bytes | None) -> str:
    """README: the first 16 bytes of ``HMAC-SHA-256(secret, b"audit-pipeline/idempotency/v1\\x00"
    + UTF-8(address) + b"\\x00" + UTF-8(key))`` (plain SHA-256 of the same message without a
    secret), as a UUID with version 8 and the RFC 9562 variant."""
    message = (
        b"audit-pipeline/idempotency/v1\x00"
        + normalized.encode("utf-8")
        + b"\x00"
        + key.encode("utf-8")
    )
    digest = (
        hmac.new(secret, message, hashlib.sha256).digest()
        if secret
        else hashlib.sha256(message).digest()
    )
    value = bytearray(digest[:16])
    value[6] = (value[6] & 0x0F) | 0x80
    value[8] = (value[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(value)))


@pytest.mark.parametrize("vector", VECTORS.values(), ids=VECTORS.keys())
def test_the_literal_answers_are_what_the_documented_formulas_give(vector: Vector) -> None:
    assert documented_pseudonym(vector.normalized, SECRET) == vector.pseudonym
    assert documented_event_id(vector.normalized, KEY, SECRET) == vector.event_id
    assert documented_event_id(vector.normalized, KEY, None) == vector.clear_event_id


@pytest.mark.parametrize("vector", VECTORS.values(), ids=VECTORS.keys())
def test_the_address_normalises_to_its_pinned_spelling(vector: Vector) -> None:
    assert normalize_email(vector.sent) == vector.normalized


@pytest.mark.parametrize("vector", VECTORS.values(), ids=VECTORS.keys())
def test_the_pseudonym_is_its_pinned_known_answer(vector: Vector) -> None:
    assert pseudonymous_subject(normalize_email(vector.sent), SECRET) == vector.pseudonym


@pytest.mark.parametrize("vector", VECTORS.values(), ids=VECTORS.keys())
def test_the_idempotent_event_id_is_its_pinned_known_answer_keyed_and_in_clear(
    vector: Vector,
) -> None:
    normalized = normalize_email(vector.sent)
    assert idempotent_event_id(normalized, KEY, SECRET) == vector.event_id
    assert idempotent_event_id(normalized, KEY, None) == vector.clear_event_id


def test_another_idempotency_key_or_none_at_all_gives_its_own_pinned_id() -> None:
    address = "john.doe@mail.com"
    assert idempotent_event_id(address, "order-43", SECRET) == (
        "902a2d3f-ba2c-8fa7-82bf-87897524aa2b"
    )
    assert idempotent_event_id(address, "", SECRET) == "bb222093-da00-8b7c-adf7-964f8de73f8a"
    assert documented_event_id(address, "order-43", SECRET) == (
        "902a2d3f-ba2c-8fa7-82bf-87897524aa2b"
    )


@pytest.mark.parametrize("vector", VECTORS.values(), ids=VECTORS.keys())
def test_the_publishers_event_carries_the_pinned_subject_and_id(vector: Vector) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    payload = {"email": vector.sent, "idempotency_key": KEY}

    pseudonymous = build_account_deleted_event(payload, secret=SECRET, now=now)
    in_clear = build_account_deleted_event(payload, secret=None, now=now)

    assert (pseudonymous.subject, pseudonymous.event_id) == (vector.pseudonym, vector.event_id)
    assert (in_clear.subject, in_clear.event_id) == (vector.normalized, vector.clear_event_id)
    without_key = build_account_deleted_event(
        {"email": vector.sent}, secret=SECRET, now=now, random_id=str(uuid.uuid4())
    )
    assert without_key.subject == vector.pseudonym


def documented_rekeyed_id(clear_event_id: str, secret: bytes) -> str:
    """README: the first 16 bytes of ``HMAC-SHA-256(secret,
    b"audit-pipeline/idempotency-rekey/v1\\x00" + ASCII(clear event id))`` as a UUID with
    version 8 and the RFC 9562 variant."""
    message = b"audit-pipeline/idempotency-rekey/v1\x00" + clear_event_id.encode("ascii")
    value = bytearray(hmac.new(secret, message, hashlib.sha256).digest()[:16])
    value[6] = (value[6] & 0x0F) | 0x80
    value[8] = (value[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(value)))


@pytest.mark.parametrize(
    ("clear_event_id", "recorded"),
    [
        # "ascii" and "idn" vectors' clear ids, as a clear producer publishes them.
        ("ee7f9293-6e52-829d-960b-b0df4badeb30", "53bd8f2f-cf00-8e68-88d7-f90198410fec"),
        ("80f50c36-1d91-87d1-944a-db1e99b792d6", "56ca6c82-26c8-8420-8af9-dc1643df5469"),
    ],
)
def test_a_clear_producers_idempotent_id_is_recorded_under_its_pinned_keyed_answer(
    clear_event_id: str, recorded: str
) -> None:
    assert documented_rekeyed_id(clear_event_id, SECRET) == recorded
    assert rekeyed_event_id(clear_event_id, SECRET) == recorded
