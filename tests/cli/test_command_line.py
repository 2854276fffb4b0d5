"""The command line without an emulator: --version, the renderer's plain and terminal output,
and the CLI's imports (no aws_cdk)."""

from __future__ import annotations

import io
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from audit_stack.cli import render
from tests.cli.conftest import Audit

ROOT = Path(__file__).resolve().parents[2]


def test_version_prints_the_package_version(audit_anywhere: Audit) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

    run = audit_anywhere("--version")

    assert run.exit_code == 0
    assert run.stdout == f"audit {version}\n"


def test_help_lists_every_exit_code(audit_anywhere: Audit) -> None:
    run = audit_anywhere("--help")

    text = " ".join(run.stdout.split())
    for code in ("0 done", "1 operational error", "2 usage error", "3 UNHEALTHY", "4 dlq redrive"):
        assert code in text
    assert "--output {table,json}" in text and "--version" in text


def test_a_piped_table_is_plain_text_on_one_line_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    long_value = "x" * 120

    text = render.table(["NAME", "COUNT", "NOTE"], [["[bold]a[/bold]", "7", long_value]])

    # Columns two spaces apart, a number right-aligned, markup left as text, nothing wrapped.
    assert text.splitlines() == [
        f"{'NAME':14}  COUNT  NOTE",
        f"[bold]a[/bold]  {'7':>5}  {long_value}",
    ]
    assert "\x1b" not in text


def test_a_table_on_a_terminal_has_bold_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    monkeypatch.delenv("NO_COLOR", raising=False)

    text = render.table(["NAME"], [["a"]])

    assert "\x1b[1m" in text and "NAME" in text


def test_cells_are_one_line_and_cut_at_the_limit() -> None:
    assert render.cell("a\n  b") == "a b"
    assert render.cell({"b": 1, "a": [2]}) == '{"a": [2], "b": 1}'
    assert render.cell("y" * 100) == "y" * (render.MAX_CELL - 3) + "..."
    assert render.duration(59) == "59 s" and render.duration(3 * 3600 + 300) == "3 h 5 min"


def test_the_cli_never_imports_aws_cdk() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from audit_stack.cli import main\n"
            "main(['--help'])\n"
            "from audit_stack.cli import dlq, events, status, trail, verify\n"
            "print(sorted(name for name in sys.modules if name.split('.')[0] in "
            "{'aws_cdk', 'jsii', 'constructs'}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert completed.stdout.strip().splitlines()[-1] == "[]"
