"""`make diagram` (python -m audit_stack.diagram --readme) rewrites the README only when the
drawing changed, and says which it did."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from audit_stack.diagram import BEGIN_MARKER, END_MARKER, main

_TOPIC_ONLY: dict[str, Any] = {
    "Resources": {"AuditTopic": {"Type": "AWS::SNS::Topic", "Properties": {}}}
}


def _files(tmp_path: Path, template: dict[str, Any]) -> tuple[Path, Path]:
    template_path = tmp_path / "Stack.template.json"
    template_path.write_text(json.dumps(template))
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{BEGIN_MARKER}\nold drawing\n{END_MARKER}\n\nmore text\n")
    return template_path, readme


def test_a_stale_diagram_is_redrawn_and_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template, readme = _files(tmp_path, _TOPIC_ONLY)

    assert main([str(template), "--readme", str(readme)]) == 0

    assert "redrawn" in capsys.readouterr().out
    text = readme.read_text()
    assert "old drawing" not in text
    assert "AuditTopic" in text
    assert text.startswith("# Title\n") and text.endswith("more text\n")


def test_an_up_to_date_diagram_is_left_alone_and_said_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template, readme = _files(tmp_path, _TOPIC_ONLY)
    main([str(template), "--readme", str(readme)])
    drawn = readme.read_text()
    # An old timestamp: a rewrite, even with the same text, would move it.
    os.utime(readme, (1_000_000_000, 1_000_000_000))
    capsys.readouterr()

    assert main([str(template), "--readme", str(readme)]) == 0

    assert "unchanged" in capsys.readouterr().out
    assert readme.read_text() == drawn
    assert readme.stat().st_mtime == 1_000_000_000
