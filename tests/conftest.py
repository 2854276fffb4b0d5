"""Session fixtures: the project's cloud assembly, synthesized once by the pinned CDK CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
STACK_NAME = "AuditPipelineStack"


def synthesize(outdir: Path) -> Path:
    """Run `cdk synth` exactly as a user does (app.py, cdk.json context, cdk-nag) into outdir."""
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    env = {
        **os.environ,
        # app.py runs with this interpreter's environment (and its Node), venv activated or not.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "1",
    }
    result = subprocess.run(
        [str(cdk), "synth", "--quiet", "--output", str(outdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cdk synth failed:\n{result.stdout}\n{result.stderr}")
    return outdir


@pytest.fixture(scope="session")
def cloud_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cdk.out folder of `cdk synth` (synthesized once per test session)."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def template_json(cloud_assembly: Path) -> dict[str, Any]:
    """The synthesized CloudFormation template of the app's stack, as JSON."""
    data: dict[str, Any] = json.loads((cloud_assembly / f"{STACK_NAME}.template.json").read_text())
    return data
