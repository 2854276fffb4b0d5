"""The wheel's package list names every package of the source tree (a fast guard: the slow
wheel test in tests/infra/test_packaging.py finds a missing one only after a fresh install)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _configured() -> tuple[set[str], dict[str, str]]:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(setuptools["packages"]), dict(setuptools.get("package-dir", {}))


def _packages_under(folder: Path, name: str) -> set[str]:
    return {
        ".".join((name, *init.parent.relative_to(folder).parts))
        for init in folder.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def test_every_package_in_the_source_tree_is_in_the_wheels_package_list() -> None:
    listed, mapped = _configured()
    expected = _packages_under(ROOT / "audit_stack", "audit_stack")
    for package, folder in mapped.items():
        # A mapped folder is a package of the wheel with or without an __init__.py of its own.
        expected |= {package} | _packages_under(ROOT / folder, package)

    assert expected - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - expected == set(), "listed packages with no __init__.py in the source tree"
