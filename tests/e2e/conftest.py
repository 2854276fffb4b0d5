"""Fixtures of the end-to-end tests: the emulator's pytest plugin and a short-timeout variant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit_stack.local.pytest_plugin import local_audit_assembly, local_audit_pipeline
from tests.cdk_app import context_environment

__all__ = ["local_audit_assembly", "local_audit_pipeline"]

ROOT = Path(__file__).resolve().parents[2]

# AuditStack as app.py builds it, but with the smallest recorder timeout the construct accepts:
# the construct derives the queue's visibility timeout from it, exactly as in production.
_SHORT_TIMEOUT_APP = """
import sys
import aws_cdk as cdk
from audit_stack import AuditStack

app = cdk.App(outdir=sys.argv[1])
AuditStack(app, "AuditPipelineStack", pipeline_props={"recorder_timeout": cdk.Duration.seconds(1)})
app.synth()
"""


@pytest.fixture(scope="session")
def short_timeout_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cloud assembly of AuditStack with a 1-second recorder timeout (synthesized once)."""
    outdir = tmp_path_factory.mktemp("short-timeout.out")
    # In a subprocess: the test process itself never starts jsii's Node.js kernel.
    bin_dir = str(Path(sys.executable).parent)
    result = subprocess.run(
        [sys.executable, "-c", _SHORT_TIMEOUT_APP, str(outdir)],
        cwd=ROOT,
        env={
            **os.environ,
            **context_environment(),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"synthesis failed:\n{result.stdout}\n{result.stderr}")
    return outdir
