"""The demo prints the audit trail through the operator CLI's renderer, turned on its side: one
row per attribute (keys first), one column per event, cells wide enough for a whole event key."""

from __future__ import annotations

from decimal import Decimal

from audit_stack.cli import render
from audit_stack.local.__main__ import _trail_table

EVENT_KEY = "2026-12-05T12:00:51.571218Z#ee7b728f-db90-4ce7-9e70-1c1f9f2cef52"


def test_each_attribute_is_a_row_keys_first_and_each_event_a_column() -> None:
    newest = {"subject": "s", "event_key": EVENT_KEY, "schema_version": Decimal(3), "details": {}}
    older = {"subject": "s", "event_key": "2026-01-01T00:00:00Z#a", "idempotent": True}

    lines = _trail_table([newest, older], first=["subject", "event_key"]).splitlines()

    assert lines[0].split() == ["attribute", "event", "1", "(newest)", "event", "2"]
    assert [line.split()[0] for line in lines[1:]] == [
        "subject",
        "event_key",
        "details",
        "idempotent",
        "schema_version",
    ]
    assert lines[2].split()[1:] == [EVENT_KEY, "2026-01-01T00:00:00Z#a"]
    assert lines[3].split()[1:] == ["{}"]
    assert lines[4].split()[1:] == ["true"]
    assert lines[5].split()[1:] == ["3"]


def test_a_whole_event_key_fits_where_the_clis_cell_would_cut_it() -> None:
    assert len(EVENT_KEY) > render.MAX_CELL
    assert render.cell(EVENT_KEY).endswith("...")

    table = _trail_table([{"event_key": EVENT_KEY, "topic_arn": "x" * 100}], first=["event_key"])

    assert EVENT_KEY in table
    assert "x" * 69 + "..." in table and "x" * 70 not in table


def test_an_empty_trail_says_so() -> None:
    assert _trail_table([], first=["subject"]) == "(no events)"
