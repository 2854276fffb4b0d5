"""The reliability suite: sizes (short in `make test`, full in `make soak`), fixtures and its table.

`make soak` sets AUDIT_SOAK=1. Every test adds a row to one table, printed at the end of the run.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from audit_stack.local.pytest_plugin import local_audit_assembly, local_audit_pipeline

__all__ = ["local_audit_assembly", "local_audit_pipeline"]

# The Lambda asset's root, as on Lambda: the tests use its parsers as the oracle for fuzzed input.
LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
if str(LAMBDAS_DIR) not in sys.path:
    sys.path.insert(0, str(LAMBDAS_DIR))

SOAK = os.environ.get("AUDIT_SOAK") == "1"


@dataclass(frozen=True)
class Sizes:
    """How much each check does."""

    load_events: int
    fault_events: int
    recorder_kills: int
    outage_events: int
    publisher_cases: int
    body_cases: int


SIZES = (
    Sizes(
        load_events=10_000,
        fault_events=2_000,
        recorder_kills=3,
        outage_events=200,
        publisher_cases=1_000,
        body_cases=1_000,
    )
    if SOAK
    else Sizes(
        load_events=300,
        fault_events=100,
        recorder_kills=1,
        outage_events=20,
        publisher_cases=100,
        body_cases=60,
    )
)


@dataclass(frozen=True)
class Row:
    """One line of the reliability table."""

    check: str
    tried: str
    what_happened: str
    recorded: int
    lost: int
    duplicates: int
    passed: bool


ROWS: list[Row] = []


def report(row: Row) -> None:
    """Add a row to the table printed at the end of the run (before the test asserts)."""
    ROWS.append(row)


# The table's order: load first, then faults, then bad input (tests run in file order), and
# what each kind of check did when it passed.
_ORDER = ("load", "faults", "outage", "bad input: publisher", "bad input: raw")
_PASSED = {"load": "held", "faults": "survived", "outage": "survived", "bad input": "contained"}


def _rank(row: Row) -> int:
    return next(
        (rank for rank, prefix in enumerate(_ORDER) if row.check.startswith(prefix)), len(_ORDER)
    )


def _verdict(row: Row) -> str:
    if not row.passed:
        return "FAILED"
    return next((word for kind, word in _PASSED.items() if row.check.startswith(kind)), "held")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the reliability table, whatever the tests' outcome."""
    if not ROWS:
        return
    variant = "soak (AUDIT_SOAK=1)" if SOAK else "short variant (make soak runs the full one)"
    headers = ["check", "tried", "recorded", "lost", "duplicates", "result"]
    rows = sorted(ROWS, key=_rank)
    cells = [
        [
            row.check,
            row.tried,
            f"{row.recorded:,}",
            str(row.lost),
            str(row.duplicates),
            _verdict(row),
        ]
        for row in rows
    ]
    widths = [max(len(line[column]) for line in [headers, *cells]) for column in range(6)]

    def line(values: list[str]) -> str:
        return "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True))

    terminalreporter.write_sep("=", f"reliability: {variant}")
    terminalreporter.write_line(line(headers))
    terminalreporter.write_line(line(["-" * width for width in widths]))
    for row, values in zip(rows, cells, strict=True):
        terminalreporter.write_line(line(values))
        terminalreporter.write_line(f"    {row.what_happened}")
    lost = sum(row.lost for row in ROWS)
    duplicates = sum(row.duplicates for row in ROWS)
    terminalreporter.write_line(
        f"records lost: {lost} (must be 0)   duplicates: {duplicates} (must be 0)   "
        f"checks held: {sum(row.passed for row in ROWS)} of {len(ROWS)}"
    )
