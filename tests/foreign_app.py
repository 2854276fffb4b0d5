"""A consumer's CDK app (tests/e2e/foreign_app), as `cdk init app --language python` lays it out,
synthesized by the pinned CDK CLI with the repository's feature flags, once per set of sources.

Stacks: MyappShared (a customer-managed key and a layer of the app's code) and MyappStack (an
S3 bucket and two functions of the app's own, and an AuditPipeline encrypted with the shared key,
so the template imports it with Fn::ImportValue).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from audit_stack import synth
from tests.cdk_app import ROOT, cdk_json_context
from tests.conftest import cached_assembly

APP_DIR = ROOT / "tests" / "e2e" / "foreign_app"
SHARED_STACK = "MyappShared"
APP_STACK = "MyappStack"


def write_app(destination: Path) -> Path:
    """A copy of the app with a cdk.json: `python app.py` and the repository's context."""
    shutil.copytree(APP_DIR, destination, ignore=shutil.ignore_patterns("__pycache__"))
    cdk_json = {"app": "python app.py", "context": cdk_json_context()}
    (destination / "cdk.json").write_text(json.dumps(cdk_json, indent=2))
    return destination


def synth_environment() -> dict[str, str]:
    """The repository's pinned CDK CLI on PATH (the app folder has no node_modules), after this
    interpreter's folder (its `python` runs the app)."""
    path = synth.synthesis_environment()["PATH"]
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{ROOT / 'node_modules' / '.bin'}"
        f"{os.pathsep}{path}"
    }


def _build(outdir: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="foreign-app-") as folder:
        app = write_app(Path(folder) / "myapp")
        synth.synthesize(app, outdir, env=synth_environment())


def foreign_app_assembly() -> Path:
    """The app's cdk.out (cached until the app, the construct or the emulator changes)."""
    sources = sorted(
        f"{path.relative_to(APP_DIR)}:{path.read_text()}"
        for path in APP_DIR.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )
    return cached_assembly("foreign-app", _build, *sources)
