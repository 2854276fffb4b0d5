"""E-mail domains under IDNA 2008 / UTS #46 (the ``idna`` package), not Python's IDNA 2003 codec:
two mailboxes that IDNA 2003 merged stay two subjects, and a domain whose labels are separated
by anything but U+002E is refused with one clear message instead of being read as more labels."""

from __future__ import annotations

import pytest

from audit_events.event import (
    InvalidPayloadError,
    normalize_subject,
    validate_delete_account_payload,
)
from audit_events.subject import normalize_email, pseudonymous_subject

SECRET = b"idna 2008 test secret"
SEPARATOR_MESSAGE = (
    "email: the domain must separate its labels with . (U+002E) only, not another dot"
)


def test_sharp_s_keeps_its_own_mailbox_where_idna_2003_mapped_it_to_ss() -> None:
    sharp = normalize_email("ursula@faß.de")
    double = normalize_email("ursula@fass.de")

    assert "faß.de".encode("idna") == b"fass.de"  # what Python's IDNA 2003 codec does
    assert sharp == "ursula@xn--fa-hia.de"
    assert double == "ursula@fass.de"
    assert pseudonymous_subject(sharp, SECRET) != pseudonymous_subject(double, SECRET)


@pytest.mark.parametrize(
    ("sent", "normalized"),
    [
        ("a@Bücher.Example", "a@xn--bcher-kva.example"),  # UTS #46 maps capitals
        ("a@\uff22\uff35\uff23\uff28.example", "a@buch.example"),  # full-width BUCH: ASCII
        ("a@xn--fa-hia.de", "a@xn--fa-hia.de"),  # an A-label stays as it is
        ("a@ελληνικά.gr", "a@xn--hxargifdar.gr"),  # final sigma kept (non-transitional)
    ],
)
def test_domains_map_as_uts46_nontransitional_processing_says(sent: str, normalized: str) -> None:
    assert normalize_email(sent) == normalized


@pytest.mark.parametrize(
    "separator",
    ["\u3002", "\uff0e", "\uff61", "\u2024", "\ufe52"],
    ids=["ideographic", "fullwidth", "halfwidth ideographic", "one dot leader", "small"],
)
def test_a_label_separator_other_than_full_stop_is_refused_by_name(separator: str) -> None:
    with pytest.raises(InvalidPayloadError) as raised:
        validate_delete_account_payload({"email": f"a@example{separator}com"})
    with pytest.raises(InvalidPayloadError) as as_subject:
        normalize_subject(f"a@bücher{separator}example")

    assert str(raised.value) == SEPARATOR_MESSAGE
    assert str(as_subject.value) == SEPARATOR_MESSAGE.replace("email:", "subject:")
    assert "example" not in str(raised.value)


@pytest.mark.parametrize(
    "domain",
    ["☃.example", "xn--n3h.example", "l\u00b7x\u00fc.example", "ab--c\u00fc.example"],
    ids=["symbol", "symbol as A-label", "middle dot outside l·l", "hyphens in 3rd and 4th"],
)
def test_a_domain_that_idna_2008_disallows_is_refused(domain: str) -> None:
    with pytest.raises(InvalidPayloadError) as raised:
        validate_delete_account_payload({"email": f"a@{domain}"})

    assert str(raised.value) == (
        "email: the domain is not a valid internationalised domain name (IDNA 2008)"
    )
