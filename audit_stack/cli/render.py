"""Every command's output: one JSON writer and one table renderer (rich), and cell formatting.

Tables stay plain text when stdout is not a terminal: no colour codes, no wrapping to a guessed
width, no trailing spaces, so ``audit ... | grep`` and ``| cut`` keep working. On a terminal the
headers are bold and rich fits the table to the window.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

__all__ = [
    "MAX_CELL",
    "cell",
    "duration",
    "from_epoch_ms",
    "iso",
    "print_json",
    "print_pairs",
    "queue_name",
    "table",
    "to_json",
]

MAX_CELL: Final = 48
"""Longest cell shown in a table; longer values end in "..." (JSON output has them whole)."""
# Wide enough that no table is ever wrapped when piped: the reader decides how to cut lines.
_PIPE_WIDTH: Final = 100_000


def to_json(document: Any) -> str:
    """``document`` as indented JSON; DynamoDB numbers, sets, bytes and datetimes included."""
    return json.dumps(document, indent=2, default=_json_default, ensure_ascii=False)


def print_json(document: Any) -> None:
    print(to_json(document))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table with one header line, columns two spaces apart, whole numbers right-aligned."""
    # Imported here: rich is for tables only, and --help, --version and JSON start without it.
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    terminal = sys.stdout.isatty()
    grid = Table(
        box=None,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        header_style="bold" if terminal else "",
    )
    for index, header in enumerate(headers):
        numeric = bool(rows) and all(row[index].isdigit() for row in rows)
        grid.add_column(Text(header), justify="right" if numeric else "left", no_wrap=True)
    for row in rows:
        # Text, not str: a cell is data, never rich markup ("[bold]" in a message stays as is).
        grid.add_row(*(Text(value) for value in row))
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=shutil.get_terminal_size().columns if terminal else _PIPE_WIDTH,
        force_terminal=terminal,
        no_color=not terminal,
        color_system="auto" if terminal else None,
        highlight=False,
        emoji=False,
    )
    console.print(grid)
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").split("\n"))


def print_pairs(pairs: dict[str, Any]) -> None:
    """``key  value`` lines, the keys aligned."""
    width = max(map(len, pairs), default=0)
    for key, value in pairs.items():
        print(f"{key.ljust(width)}  {cell(value)}")


def cell(value: Any, *, width: int = MAX_CELL) -> str:
    """A value on one line of at most ``width`` characters (JSON for anything but text)."""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=_json_default, sort_keys=True, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def duration(seconds: float) -> str:
    """A duration as an operator reads it: "45 s", "12 min", "3 h 5 min", "4 d"."""
    whole = int(seconds)
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{whole // 60} min"
    if whole < 172_800:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86_400} d"


def iso(moment: datetime) -> str:
    """An instant to the second, in UTC: ``2026-11-29T10:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_epoch_ms(value: str) -> str:
    """:func:`iso` of milliseconds since the epoch, as SQS gives them."""
    return iso(datetime.fromtimestamp(int(value) / 1000, UTC))


def queue_name(url: str) -> str:
    """A queue's name, from its URL."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, datetime):
        return iso(value)
    return str(value)
