"""The README's "Use AuditPipeline in your own CDK app" recipe, run as written in an empty folder:
cdk init, a fresh venv, pip install from this checkout, synth, the emulator, and `audit`.

Slow (a fresh virtualenv with aws-cdk-lib and moto: about two minutes), so it runs once, as one
test. The machine's own Node.js stays on PATH behind the venv's, as a user's Node 20 would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"<!-- recipe:(?P<name>[a-z]+) -->\s*```bash\n(?P<body>.*?)\n```", re.DOTALL)
_AUDIT_PIPELINE_LINE = re.compile(r"^export AUDIT_PIPELINE=.*$", re.MULTILINE)
_EMAIL = "john.doe@mail.com"


def recipe_blocks() -> dict[str, str]:
    """The README's recipe blocks by name (setup, emulator, operate)."""
    readme = (ROOT / "README.md").read_text()
    return {match["name"]: match["body"] for match in _BLOCK.finditer(readme)}


def _environment() -> dict[str, str]:
    """A user's shell: this checkout as AUDIT_PIPELINE, the CDK CLI installed, the machine's
    python3 and node, nothing of this repository's venv (pip's configuration and cache, in the
    home folder, stay in use)."""
    base_python_dir = str(Path(getattr(sys, "_base_executable", sys.executable)).parent)
    keep = {
        name: value
        for name, value in os.environ.items()
        if name in {"HOME", "USER", "TMPDIR"}
        or name.startswith(("PIP_", "LANG", "LC_", "SSL_", "REQUESTS_CA"))
    }
    path = [str(ROOT / "node_modules" / ".bin"), base_python_dir, "/usr/local/bin", "/usr/bin"]
    return {
        **keep,
        "PATH": os.pathsep.join([*path, "/bin"]),
        "AUDIT_PIPELINE": str(ROOT),
        # The CDK CLI must not call the network (no update check, no telemetry).
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "1",
    }


def _bash(
    script: str, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_readme_has_the_three_recipe_blocks() -> None:
    blocks = recipe_blocks()
    assert sorted(blocks) == ["emulator", "operate", "setup"]
    assert _AUDIT_PIPELINE_LINE.search(blocks["setup"])
    # The construct for deployments; the emulator and a Node.js for developers only.
    assert '"audit-pipeline @ file://$AUDIT_PIPELINE" >> requirements.txt' in blocks["setup"]
    assert (
        '"audit-pipeline[local,node] @ file://$AUDIT_PIPELINE" >> requirements-dev.txt'
        in blocks["setup"]
    )


@pytest.mark.install
@pytest.mark.recipe
def test_the_readme_recipe_runs_as_written(tmp_path: Path) -> None:
    blocks = recipe_blocks()
    env = _environment()
    system_node = _bash("node --version", tmp_path, env, 30).stdout.strip()

    setup = _bash(_AUDIT_PIPELINE_LINE.sub("", blocks["setup"]), tmp_path, env, 1200)
    assert setup.returncode == 0, f"{setup.stdout}\n{setup.stderr}"
    app = tmp_path / "my-app"
    assert (app / "cdk.out" / "MyStack.template.json").is_file()
    assert (
        '"@aws-cdk/aws-sns-subscriptions:restrictSqsDescryption": true'
        in (app / "cdk.json").read_text()
    )
    # demo: the event was published, recorded and read back.
    assert f"Audit trail of {_EMAIL}" in setup.stdout
    # jsii's banner says "end-of-life" whatever the machine's Node; none with the venv's node.
    assert "end-of-life" not in setup.stdout + setup.stderr, system_node

    in_app = "source .venv/bin/activate\n"
    emulator = subprocess.Popen(
        ["bash", "-c", in_app + "exec " + blocks["emulator"].split("#")[0].strip()],
        cwd=app,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        started = time.monotonic()
        for line in emulator.stdout:
            if "emulator running on http://127.0.0.1:4599" in line:
                break
            assert time.monotonic() - started < 120, "the emulator did not start"
        else:
            pytest.fail(f"the emulator stopped: exit code {emulator.wait()}")
        operate = blocks["operate"].splitlines()
        published = _bash(in_app + operate[0], app, env, 120)
        assert published.returncode == 0, published.stderr
        event_id = re.search(r"event_id\s+(\S+)", published.stdout)
        assert event_id is not None, published.stdout
        deadline = time.monotonic() + 60
        while True:
            rest = _bash(in_app + "\n".join(operate[1:]), app, env, 120)
            if event_id[1] in rest.stdout or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert rest.returncode == 0, f"{rest.stdout}\n{rest.stderr}"
        assert event_id[1] in rest.stdout
        assert "Stack MyStack, pipeline Audit" in rest.stdout
        assert "HEALTHY" in rest.stdout
    finally:
        emulator.terminate()
        emulator.wait(timeout=60)
