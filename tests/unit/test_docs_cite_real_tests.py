"""The README and docs/ cite tests as the proof of their claims (`test_...`): every test they
name exists, so a renamed or deleted test cannot leave a claim pointing at nothing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_CITED = re.compile(r"`(?:[\w/.\-]+::)?(test_\w+)(?:\[[^\]`]*\])?`")
_DEFINED = re.compile(r"^\s*(?:async\s+)?def (test_\w+)", re.MULTILINE)


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _defined_tests() -> set[str]:
    return {
        name
        for path in (ROOT / "tests").rglob("*.py")
        for name in _DEFINED.findall(path.read_text(encoding="utf-8"))
    }


def test_every_test_the_docs_cite_exists() -> None:
    defined = _defined_tests()
    cited = {
        (path.relative_to(ROOT).as_posix(), name)
        for path in _documents()
        for name in _CITED.findall(path.read_text(encoding="utf-8"))
    }
    assert len(cited) > 100  # the pattern still finds the citations
    assert sorted(entry for entry in cited if entry[1] not in defined) == []


def test_the_citation_pattern_reads_the_forms_the_docs_use() -> None:
    text = (
        "`test_a` and `tests/e2e/test_x.py::test_b` and `test_c[param]`, not test_d or `test_e "
        "with words`"
    )
    assert _CITED.findall(text) == ["test_a", "test_b", "test_c"]
