"""Lawful erasure without AWS: the stub, the redaction entry, and how ``audit verify`` and
inclusion proofs treat a redacted record (digests signed here with a local P-256 key)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from audit_stack import verify as checks
from audit_stack.lambda_code import audit_events_module, contract
from audit_stack.verify import verify_log
from tests.unit.test_auditor_script import _run as run_auditor_script
from tests.unit.test_verify import KEY, _chain, _kinds

if TYPE_CHECKING:
    from audit_events import catalogue, integrity, redaction
else:
    catalogue = audit_events_module("catalogue")
    integrity = audit_events_module("integrity")
    redaction = audit_events_module("redaction")

BREAK_GLASS = "arn:aws:iam::111122223333:role/BreakGlass"
WHEN = "2026-03-01T10:00:00.000000Z"


def _record(subject: str, *, actor: str | None = "support-agent-7") -> dict[str, Any]:
    item: dict[str, Any] = {
        contract.PARTITION_KEY: {"S": subject},
        contract.SORT_KEY: {"S": f"2026-01-01T00:00:00.000000Z#id-{subject[:8]}"},
        contract.SUBJECT_TYPE_ATTRIBUTE: {"S": contract.SUBJECT_TYPE_PSEUDONYM},
        contract.EVENT_TYPE_ATTRIBUTE: {"S": "InvoiceVoided"},
        "event_id": {"S": f"id-{subject[:8]}"},
        contract.RECORDED_AT_ATTRIBUTE: {"S": "2026-01-01T00:00:00.000000Z"},
        "details": {"M": {"phone": {"S": "+44 20 7946 0000"}}},
    }
    if actor is not None:
        item[contract.ACTOR_ATTRIBUTE] = {"S": actor}
    return integrity.with_record_hash(item)


def _stub(item: dict[str, Any], reason: str = "GDPR Art. 17 request 4711") -> dict[str, Any]:
    return redaction.redaction_stub(item, redacted_at=WHEN, reason=reason, redacted_by=BREAK_GLASS)


def _entry(stub: dict[str, Any], *, entry_id: str = "r1") -> dict[str, Any]:
    """The recorded AuditRecordRedacted event for ``stub``, as the recorder would write it."""
    details = redaction.redaction_details(stub)
    return integrity.with_record_hash(
        {
            contract.PARTITION_KEY: {"S": "pseudonym-of-audit-log"},
            contract.SORT_KEY: {"S": f"2026-03-01T10:00:00.000000Z#{entry_id}"},
            contract.EVENT_TYPE_ATTRIBUTE: {"S": contract.REDACTION_EVENT_TYPE},
            contract.RECORDED_AT_ATTRIBUTE: {"S": "2026-03-01T10:00:01.000000Z"},
            "details": {"M": {name: {"S": value} for name, value in details.items()}},
        }
    )


# -- the stub --------------------------------------------------------------------------------


def test_a_stub_drops_every_personal_attribute_and_keeps_the_key_and_the_sealed_hash() -> None:
    record = _record("p1")
    stub = _stub(record)
    for name in contract.PERSONAL_ATTRIBUTES:
        assert name not in stub
    for name in (contract.PARTITION_KEY, contract.SORT_KEY, contract.RECORD_HASH_ATTRIBUTE):
        assert stub[name] == record[name]
    assert stub[contract.REDACTED_AT_ATTRIBUTE] == {"S": WHEN}
    assert stub[contract.REDACTED_BY_ATTRIBUTE] == {"S": BREAK_GLASS}
    assert stub[contract.REDACTION_REASON_ATTRIBUTE] == {"S": "GDPR Art. 17 request 4711"}
    # What stays: the fact that an event of this type happened, and when.
    assert stub[contract.EVENT_TYPE_ATTRIBUTE] == {"S": "InvoiceVoided"}
    assert integrity.record_hash(stub) != record[contract.RECORD_HASH_ATTRIBUTE]["S"]


def test_a_record_without_an_actor_is_redacted_too() -> None:
    stub = _stub(_record("p1", actor=None))
    assert "details" not in stub
    assert contract.ACTOR_ATTRIBUTE not in stub


def test_a_stub_or_a_modified_record_is_not_redacted_again() -> None:
    record = _record("p1")
    with pytest.raises(redaction.RedactionError, match="redacted already"):
        _stub(_stub(record))
    altered = {**record, "details": {"M": {}}}
    with pytest.raises(redaction.RedactionError, match="modified"):
        _stub(altered)


@pytest.mark.parametrize(
    ("reason", "rule"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * (redaction.MAX_REASON_LENGTH + 1), "at most"),
        ("asked by jane@example.com", "no '@'"),
        ("line\nbreak", "control characters"),
    ],
)
def test_a_reason_that_is_empty_too_long_or_holds_an_address_is_refused_without_echo(
    reason: str, rule: str
) -> None:
    with pytest.raises(redaction.RedactionError, match=rule) as refused:
        redaction.check_reason(reason)
    if reason.strip():
        assert reason.strip() not in str(refused.value)


def test_an_assumed_roles_session_name_never_reaches_the_entry() -> None:
    session = "arn:aws:sts::111122223333:assumed-role/BreakGlass/jane.doe@example.com"
    assert redaction.principal_of(session) == BREAK_GLASS
    user = "arn:aws:iam::111122223333:user/ops"
    assert redaction.principal_of(user) == user


# -- the entry, the built-in event type ------------------------------------------------------


def test_the_entry_names_the_record_by_key_and_hashes_only() -> None:
    pseudonym = "9f" * 32
    record = _record(pseudonym)
    stub = _stub(record)
    details = redaction.redaction_details(stub)
    assert details == {
        "event_key": record[contract.SORT_KEY]["S"],
        "record_hash": record[contract.RECORD_HASH_ATTRIBUTE]["S"],
        "stub_hash": integrity.record_hash(stub),
        "reason": "GDPR Art. 17 request 4711",
        "redacted_by": BREAK_GLASS,
        "redacted_at": WHEN,
    }
    # Not even the pseudonym: the entry is recorded about the log, not about the person.
    assert not any(pseudonym in value for value in details.values())
    parsed = redaction.redaction_entry(_entry(stub))
    assert parsed is not None
    assert parsed.match_key == (details["event_key"], details["record_hash"], details["stub_hash"])
    assert redaction.redaction_entry(record) is None


def test_every_catalogue_accepts_redaction_entries_and_checks_their_details() -> None:
    parsed = catalogue.parse_catalogue('{"InvoiceVoided": null}')
    assert parsed.knows(contract.REDACTION_EVENT_TYPE)
    assert parsed.event_types == ("InvoiceVoided",)  # what the pipeline declared
    details = redaction.redaction_details(_stub(_record("p1")))
    parsed.check(contract.REDACTION_EVENT_TYPE, details)
    with pytest.raises(catalogue.EventRuleError, match="no properties other than"):
        parsed.check(contract.REDACTION_EVENT_TYPE, {**details, "email": "a@b.example"})
    with pytest.raises(catalogue.EventRuleError, match=r"details\.reason"):
        parsed.check(contract.REDACTION_EVENT_TYPE, {**details, "reason": "by a@b.example"})


# -- audit verify ----------------------------------------------------------------------------


def test_a_stub_that_a_sealed_entry_names_is_reported_redacted_and_verification_passes() -> None:
    a, b = _record("a"), _record("b")
    stub = _stub(a)
    entry = _entry(stub)
    report = verify_log([stub, b, entry], _chain([a, b], [entry]), KEY.public_key())
    assert _kinds(report.findings) == [(checks.REDACTED, "a")]
    (finding,) = report.findings
    assert finding.detail == f"redacted at {WHEN} by {BREAK_GLASS}: GDPR Art. 17 request 4711"
    assert finding.digest == 1
    assert report.ok
    assert report.to_dict()["ok"] is True


def test_a_stub_without_a_sealed_entry_is_tampering() -> None:
    a = _record("a")
    report = verify_log([_stub(a)], _chain([a]), KEY.public_key())
    assert _kinds(report.findings) == [(checks.MODIFIED, "a")]
    assert "no sealed redaction entry" in report.findings[0].detail
    assert not report.ok


def test_an_entry_for_another_stub_does_not_vouch_for_an_altered_one() -> None:
    a = _record("a")
    stub = _stub(a)
    entry = _entry(stub)
    # Same record, same entry, but the stub says another reason than the sealed one.
    edited = {**stub, contract.REDACTION_REASON_ATTRIBUTE: {"S": "no reason"}}
    report = verify_log([edited, entry], _chain([a], [entry]), KEY.public_key())
    assert _kinds(report.findings) == [(checks.MODIFIED, "a")]


def test_a_stub_that_changed_its_record_hash_is_modified_even_with_an_entry() -> None:
    a = _record("a")
    stub = _stub(a)
    entry = _entry(stub)
    rehashed = integrity.with_record_hash(stub)
    report = verify_log([rehashed, entry], _chain([a], [entry]), KEY.public_key())
    assert _kinds(report.findings) == [(checks.MODIFIED, "a")]
    assert "does not keep its sealed record_hash" in report.findings[0].detail


def test_an_entry_not_sealed_yet_leaves_the_stub_pending() -> None:
    a = _record("a")
    stub = _stub(a)
    entry = _entry(stub)  # recorded 2026-03-01T10:00:01Z
    soon_after = datetime(2026, 3, 1, 10, 3, tzinfo=UTC)
    report = verify_log([stub, entry], _chain([a]), KEY.public_key(), now=soon_after)
    kinds = [kind for kind, _ in _kinds(report.findings)]
    assert kinds.count(checks.PENDING) == 2  # the stub, and its entry itself
    assert checks.MODIFIED not in kinds
    assert report.ok  # on its way to the sealer: listed, not a failure
    # An entry still in no digest after the seal window is a finding; the stub waits on it.
    next_day = datetime(2026, 3, 2, tzinfo=UTC)
    late = verify_log([stub, entry], _chain([a]), KEY.public_key(), now=next_day)
    assert sorted(kind for kind, _ in _kinds(late.findings)) == sorted(
        [checks.PENDING, checks.UNSEALED]
    )
    assert not late.ok


def test_an_altered_entry_vouches_for_nothing() -> None:
    a = _record("a")
    stub = _stub(a)
    entry = _entry(stub)
    forged_details = {
        **entry["details"]["M"],
        "reason": {"S": "another reason"},
    }
    altered_entry = {**entry, "details": {"M": forged_details}}
    report = verify_log([stub, altered_entry], _chain([a], [entry]), KEY.public_key())
    kinds = sorted(kind for kind, _ in _kinds(report.findings))
    assert kinds == sorted([checks.MODIFIED, checks.MODIFIED])  # the entry, and the stub


# -- inclusion proofs ------------------------------------------------------------------------


def test_an_inclusion_proof_of_a_redacted_record_verifies_on_its_sealed_hash() -> None:
    a, b = _record("a"), _record("b")
    stub = _stub(a)
    digests = _chain([a, b])
    proof = checks.inclusion_proof(stub, digests)
    assert proof["record"]["canonical_content"] is None
    assert proof["record"]["record_hash"] == a[contract.RECORD_HASH_ATTRIBUTE]["S"]
    assert proof["record"]["redacted"][contract.REDACTED_BY_ATTRIBUTE] == BREAK_GLASS
    assert "+44" not in str(proof)
    signed = checks.check_inclusion_proof(proof, KEY.public_key())
    assert signed.checkpoint.tree_size == 2


def test_a_proof_of_a_stub_whose_hash_was_changed_does_not_verify() -> None:
    a, b = _record("a"), _record("b")
    digests = _chain([a, b])
    proof = checks.inclusion_proof(_stub(a), digests)
    proof["record"]["record_hash"] = b[contract.RECORD_HASH_ATTRIBUTE]["S"][::-1]
    with pytest.raises(checks.ProofError):
        checks.check_inclusion_proof(proof, KEY.public_key())


def test_a_catalogue_that_declares_the_built_in_type_cannot_loosen_its_schema() -> None:
    parsed = catalogue.parse_catalogue(f'{{"{contract.REDACTION_EVENT_TYPE}": null}}')
    with pytest.raises(catalogue.EventRuleError, match="must have the properties"):
        parsed.check(contract.REDACTION_EVENT_TYPE, {"anything": "goes"})


def test_the_documented_auditor_script_accepts_a_redacted_records_proof(tmp_path: Path) -> None:
    a, b = _record("a"), _record("b")
    proof = checks.inclusion_proof(_stub(a), _chain([a, b]))
    accepted = run_auditor_script(tmp_path, proof)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip().endswith("(redacted)")
    proof["record"]["record_hash"] = b[contract.RECORD_HASH_ATTRIBUTE]["S"]
    rejected = run_auditor_script(tmp_path, proof)
    assert rejected.returncode == 1


# -- records written in clear, moved under their pseudonym -----------------------------------

PSEUDONYM = "ab" * 32


def _clear_record() -> dict[str, Any]:
    item = {**_record("alice@example.com")}
    item[contract.SUBJECT_TYPE_ATTRIBUTE] = {"S": contract.SUBJECT_TYPE_EMAIL}
    item["details"] = {"M": {"email": {"S": "alice@example.com"}}}
    return integrity.with_record_hash(item)


def _moved(item: dict[str, Any]) -> dict[str, Any]:
    return redaction.pseudonymised_stub(
        item, pseudonym=PSEUDONYM, redacted_at=WHEN, reason="migration", redacted_by=BREAK_GLASS
    )


def test_a_pseudonymised_stub_carries_the_pseudonym_and_the_sealed_hash_not_the_address() -> None:
    clear = _clear_record()
    stub = _moved(clear)
    assert stub[contract.PARTITION_KEY] == {"S": PSEUDONYM}
    assert stub[contract.SUBJECT_TYPE_ATTRIBUTE] == {"S": contract.SUBJECT_TYPE_PSEUDONYM}
    assert stub[contract.RECORD_HASH_ATTRIBUTE] == clear[contract.RECORD_HASH_ATTRIBUTE]
    assert "alice@example.com" not in str(stub)
    with pytest.raises(redaction.RedactionError, match="pseudonym already"):
        _moved(_record("p1"))


def test_a_record_moved_under_its_pseudonym_with_a_sealed_entry_is_redacted_not_missing() -> None:
    clear, other = _clear_record(), _record("b")
    stub = _moved(clear)
    entry = _entry(stub)
    report = verify_log([stub, other, entry], _chain([clear, other], [entry]), KEY.public_key())
    assert _kinds(report.findings) == [(checks.REDACTED, PSEUDONYM)]
    assert report.findings[0].detail.startswith("pseudonymised (moved from its key in clear)")
    assert report.ok
    proof = checks.inclusion_proof(stub, _chain([clear, other], [entry]))
    assert checks.check_inclusion_proof(proof, KEY.public_key())


def test_a_record_moved_without_a_sealed_entry_is_tampering_and_the_original_missing() -> None:
    clear = _clear_record()
    report = verify_log([_moved(clear)], _chain([clear]), KEY.public_key())
    assert sorted(_kinds(report.findings)) == sorted(
        [(checks.MODIFIED, PSEUDONYM), (checks.MISSING, "alice@example.com")]
    )
    assert not report.ok
