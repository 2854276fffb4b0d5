"""The side environment that synthesizes the AWS Solutions Constructs peer from its packages.

``bench/.venv-solutions`` is made on demand (``make bench``, or ``python -m bench.solutions_venv``)
from ``bench/requirements-solutions.txt``, and remade when that file changes; nothing in
``make test`` needs it. When it cannot be made (no package index, a conflict), the benchmark
falls back to the hand-built peer and says so in its report.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from audit_stack import synth

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_DIR = BENCH_DIR / ".venv-solutions"
REQUIREMENTS = BENCH_DIR / "requirements-solutions.txt"
# What the environment was installed from: a copy of the requirements, written last.
_STAMP = VENV_DIR / "installed-requirements.txt"
_INSTALL_TIMEOUT_SECONDS = 1200.0
APP_MODULE = "bench.peers.solutions_constructs"


class SideEnvironmentError(RuntimeError):
    """The side environment could not be made or could not synthesize; the message says why."""


@dataclass(frozen=True)
class SideEnvironment:
    """A ready side environment: its interpreter and the packages it holds."""

    python: Path
    requirements: tuple[str, ...]


def pinned_requirements(text: str) -> tuple[str, ...]:
    """The ``name==version`` lines of a requirements file, comments and blanks dropped."""
    found: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "==" not in line:
            raise ValueError(f"{REQUIREMENTS.name}: {line!r} is not pinned (name==version)")
        found.append(line)
    return tuple(found)


def _run(command: list[str], what: str) -> None:
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=_INSTALL_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SideEnvironmentError(f"{what}: {error}") from error
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise SideEnvironmentError(f"{what} failed (exit code {result.returncode}): {tail}")


def ensure() -> SideEnvironment:
    """The side environment, made or remade if its requirements changed."""
    text = REQUIREMENTS.read_text()
    requirements = pinned_requirements(text)
    python = VENV_DIR / "bin" / "python"
    if python.is_file() and _STAMP.is_file() and _STAMP.read_text() == text:
        return SideEnvironment(python, requirements)
    _run([sys.executable, "-m", "venv", "--clear", str(VENV_DIR)], "python -m venv")
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
        f"pip install -r {REQUIREMENTS.name}",
    )
    _STAMP.write_text(text)
    return SideEnvironment(python, requirements)


def synthesize(environment: SideEnvironment, outdir: Path) -> Path:
    """Synthesize the peer with the side interpreter into ``outdir`` (Node.js from this
    environment's PATH, as every other synthesis here)."""
    command = [str(environment.python), "-m", APP_MODULE, str(outdir)]
    try:
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=synth.synthesis_environment(),
            capture_output=True,
            text=True,
            timeout=synth.DEFAULT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SideEnvironmentError(f"synthesis in the side environment: {error}") from error
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
        raise SideEnvironmentError(f"synthesis in the side environment failed: {tail}")
    return outdir


if __name__ == "__main__":
    made = ensure()
    print(f"{made.python}: {', '.join(made.requirements)}")
