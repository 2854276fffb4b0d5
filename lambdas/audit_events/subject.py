"""Whom an audit event is about: the normalised e-mail, its keyed pseudonym, idempotent event ids.

Plain functions of the address and the secret's bytes (no AWS calls), so that the publisher
Lambda, the recorder, the ``audit`` CLI and producer clients derive exactly the same values.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
import uuid

import idna

from .contract import SUBJECT_TYPE_EMAIL, SUBJECT_TYPE_PSEUDONYM

SUBJECT_TYPES = (SUBJECT_TYPE_EMAIL, SUBJECT_TYPE_PSEUDONYM)

# Domain separation: the same secret keys two different functions, which must never collide.
_PSEUDONYM_CONTEXT = b"audit-pipeline/subject/v1\x00"
_IDEMPOTENCY_CONTEXT = b"audit-pipeline/idempotency/v1\x00"
_REKEY_CONTEXT = b"audit-pipeline/idempotency-rekey/v1\x00"
# Full stops that UTS #46 maps to U+002E without a compatibility decomposition to it.
_DOT_LIKE = frozenset("\u3002\uff61")


class InvalidDomainError(ValueError):
    """An e-mail domain that is not a valid (internationalised) domain name."""


def normalize_email(email: str) -> str:
    """The one spelling of an address that its pseudonym is computed from.

    Unicode NFC, lower case (addresses are matched case-insensitively in practice: one subject
    per account), and an internationalised domain in its ASCII (punycode) form, so that
    ``jürgen@bücher.example`` and ``Jürgen@xn--bcher-kva.example`` are the same account.
    Raises InvalidDomainError if the domain cannot be converted.
    """
    local_part, at, domain = unicodedata.normalize("NFC", email).rpartition("@")
    if not at:
        raise InvalidDomainError("email: must contain @")
    return f"{local_part.lower()}@{ascii_domain(domain)}"


def ascii_domain(domain: str) -> str:
    """``domain`` in lower-case ASCII; IDN labels become punycode under IDNA 2008 with UTS #46
    mapping, non-transitional (the maintained ``idna`` package, as browsers and registries do):
    ``faß.de`` stays ``xn--fa-hia.de``, a mailbox apart from ``fass.de``, where Python's IDNA
    2003 codec would have merged them.

    Labels are separated by U+002E only: a domain with an ideographic or full-width full stop,
    a one dot leader or any other character that maps to a dot is refused (InvalidDomainError),
    rather than silently read as several labels. All-ASCII labels are only lower-cased, as
    before (LDH names are checked by the caller); ``xn--`` labels must be valid IDNA 2008.
    """
    if any(_is_label_separator(char) for char in domain if not char.isascii()):
        raise InvalidDomainError(
            "email: the domain must separate its labels with . (U+002E) only, not another dot"
        )
    labels = []
    for label in domain.split("."):
        try:
            if not label.isascii():
                mapped = idna.uts46_remap(label, std3_rules=False, transitional=False)
                if "." in mapped:
                    raise InvalidDomainError(
                        "email: the domain must separate its labels with . (U+002E) only, "
                        "not another dot"
                    )
                label = idna.alabel(mapped).decode("ascii")
            elif label[:4].lower() == "xn--":
                idna.ulabel(label)  # a punycode label must decode to a valid IDNA 2008 label
        except (idna.IDNAError, UnicodeError):
            raise InvalidDomainError(
                "email: the domain is not a valid internationalised domain name (IDNA 2008)"
            ) from None
        labels.append(label.lower())
    return ".".join(labels)


def _is_label_separator(char: str) -> bool:
    # U+3002 and U+FF61 have no compatibility decomposition to "." but UTS #46 maps them to it.
    return char in _DOT_LIKE or "." in unicodedata.normalize("NFKC", char)


def pseudonymous_subject(normalized_email: str, secret: bytes) -> str:
    """The keyed pseudonym of a normalised address: HMAC-SHA-256, 64 lower-case hex digits.

    Without the secret, nobody can tell which address a pseudonym stands for, nor test a guess.
    """
    if not secret:
        raise ValueError("secret: must not be empty")
    message = _PSEUDONYM_CONTEXT + normalized_email.encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def idempotent_event_id(normalized_email: str, idempotency_key: str, secret: bytes | None) -> str:
    """The event id of a call with a caller's idempotency key: the same for every retry.

    A UUID version 8 (RFC 9562, vendor-defined) built from HMAC-SHA-256 of the address and the
    key under the pseudonym secret; with no secret (subject in clear), from their SHA-256.
    """
    message = (
        _IDEMPOTENCY_CONTEXT
        + normalized_email.encode("utf-8")
        + b"\x00"
        + idempotency_key.encode("utf-8")
    )
    if secret:
        digest = hmac.new(secret, message, hashlib.sha256).digest()
    else:
        digest = hashlib.sha256(message).digest()
    return _uuid8(digest)


def _uuid8(digest: bytes) -> str:
    """The first 16 bytes of ``digest`` as a UUID version 8 (RFC 9562, vendor-defined)."""
    value = bytearray(digest[:16])
    value[6] = (value[6] & 0x0F) | 0x80  # version 8
    value[8] = (value[8] & 0x3F) | 0x80  # RFC 9562 variant
    return str(uuid.UUID(bytes=bytes(value)))


def rekeyed_event_id(clear_event_id: str, secret: bytes) -> str:
    """The id under which a pipeline with the secret records a clear producer's idempotent
    event: a UUID version 8 from HMAC-SHA-256 of the producer's id under the pseudonym secret.

    A producer without the secret (``subject_in_clear``, another account) can only derive its
    id from an unkeyed SHA-256 of address and key, which anyone who reads the table and guesses
    both could recompute; keyed here, it confirms nothing. The same producer id always gives the
    same recorded id, so every retry is still one event.
    """
    if not secret:
        raise ValueError("secret: must not be empty")
    return _uuid8(
        hmac.new(secret, _REKEY_CONTEXT + clear_event_id.encode("ascii"), hashlib.sha256).digest()
    )
