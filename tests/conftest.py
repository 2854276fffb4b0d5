"""Session fixtures: the project's cloud assembly, synthesized once by the pinned CDK CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cdk_app import context_environment

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


_APP_WITH_PROPS = """
import sys
import aws_cdk as cdk
from audit_stack import AuditStack

app = cdk.App(outdir=sys.argv[1])
AuditStack(app, "AuditPipelineStack", pipeline_props={props})
app.synth()
"""

# A consumer's app: its own stack name, two AuditPipelines (one nested in a construct of its
# own), and a second stack without any.
_TWO_PIPELINES_APP = """
import sys
import aws_cdk as cdk
from constructs import Construct
from audit_stack import AuditPipeline

app = cdk.App(outdir=sys.argv[1])
stack = cdk.Stack(app, "MyStack")
AuditPipeline(stack, "Audit", removal_policy=cdk.RemovalPolicy.DESTROY)
AuditPipeline(Construct(stack, "Tenants"), "Audit", event_types=["AccountDeleted", "TenantClosed"])
cdk.aws_sqs.Queue(cdk.Stack(app, "Unrelated"), "Jobs", enforce_ssl=True)
app.synth()
"""


def _synthesize_app(source: str, outdir: Path) -> Path:
    """Run an app's Python source with cdk.json's context into ``outdir``.

    In a subprocess: the test process itself never starts jsii's Node.js kernel.
    """
    bin_dir = str(Path(sys.executable).parent)
    result = subprocess.run(
        [sys.executable, "-c", source, str(outdir)],
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


def synthesize_with_props(outdir: Path, props: str) -> Path:
    """AuditStack as app.py builds it, with ``props`` (Python source of a dict) for its pipeline."""
    return _synthesize_app(_APP_WITH_PROPS.replace("{props}", props), outdir)


@pytest.fixture(scope="session")
def two_pipelines_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cdk.out of an app with stack MyStack holding pipelines Audit and Tenants/Audit."""
    return _synthesize_app(_TWO_PIPELINES_APP, tmp_path_factory.mktemp("two-pipelines.out"))


@pytest.fixture(scope="session")
def subject_in_clear_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cloud assembly of AuditStack with subject_in_clear=True (synthesized once)."""
    return synthesize_with_props(
        tmp_path_factory.mktemp("subject-in-clear.out"), '{"subject_in_clear": True}'
    )
