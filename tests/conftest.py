"""Session fixtures: the cloud assemblies the tests read, each synthesized once by the pinned CDK
CLI (or, for a variant app, its Python in a child process) and cached by a hash of its sources."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from audit_stack import synth
from tests.cdk_app import context_environment

ROOT = Path(__file__).resolve().parent.parent
STACK_NAME = "AuditPipelineStack"

# Everything a synthesized template can depend on: the app, the construct and its Lambda code,
# the pinned CDK CLI and libraries, and this file (the variant apps' sources live here).
_SOURCE_FILES = (
    "app.py",
    "cdk.json",
    # The CDK CLI's context lookups, when a synthesis has written any.
    "cdk.context.json",
    "package-lock.json",
    "pyproject.toml",
    "requirements.txt",
    "requirements-dev.txt",
    "tests/cdk_app.py",
    "tests/conftest.py",
)
_SOURCE_FOLDERS = ("audit_stack", "lambdas")


def _source_paths(root: Path) -> Iterable[Path]:
    for name in _SOURCE_FILES:
        yield root / name
    for folder in _SOURCE_FOLDERS:
        yield from sorted(
            path
            for path in (root / folder).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
        )


def sources_digest(*extra: str, root: Path = ROOT) -> str:
    """A hash of every synthesis input in the checkout ``root``, this interpreter, the CDK
    libraries it imports (`make test-lowest` runs another aws-cdk-lib), and ``extra``."""
    digest = hashlib.sha256(sys.version.encode())
    for library in ("aws-cdk-lib", "constructs"):
        digest.update(f"\0{library}=={importlib.metadata.version(library)}".encode())
    for path in _source_paths(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    for text in extra:
        digest.update(b"\0" + text.encode())
    return digest.hexdigest()[:20]


# pytest's own cache folder: `pytest --cache-clear` and `make clean` empty it.
SYNTH_CACHE = ROOT / ".pytest_cache" / "d" / "cdk-synth"


def cached_assembly(
    name: str, build: Callable[[Path], object], *key: str, cache_dir: Path = SYNTH_CACHE
) -> Path:
    """The cloud assembly ``build(outdir)`` writes, built once for these sources and reused by
    every pytest-xdist worker and by later sessions until a source changes.

    A file lock makes the other workers wait for the one that builds; the build goes to a
    temporary folder that is renamed when complete, so a failed or killed build leaves nothing
    that looks finished.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    entry = cache_dir / f"{name}-{sources_digest(name, *key)}"
    with FileLock(str(cache_dir / f"{name}.lock")):
        if not entry.is_dir():
            for stale in cache_dir.glob(f"{name}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            building = cache_dir / f"{name}.building"
            shutil.rmtree(building, ignore_errors=True)
            build(building)
            building.rename(entry)
    return entry


# Markers by folder, so that no test of these folders is forgotten: every test under them runs on
# the embedded emulator (`make unit` leaves them out), and the reliability runs are `make soak`'s.
_FOLDER_MARKERS = {
    "e2e": ("e2e",),
    "cli": ("e2e",),
    "reliability": ("e2e", "reliability"),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add the markers of each test's folder (see ``_FOLDER_MARKERS``)."""
    tests_dir = ROOT / "tests"
    for item in items:
        if not item.path.is_relative_to(tests_dir):
            continue
        for marker in _FOLDER_MARKERS.get(item.path.relative_to(tests_dir).parts[0], ()):
            item.add_marker(marker)


@pytest.fixture(scope="session")
def cloud_assembly() -> Path:
    """The cdk.out folder of `cdk synth` run exactly as a user runs it (app.py, cdk.json's
    context, cdk-nag), synthesized once for these sources."""
    return cached_assembly("app", lambda out: synth.synthesize(ROOT, out))


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


# Events of a type of its own: pipeline Audit records AccountDeleted and InvoiceVoided (with a
# details schema), pipeline Billing InvoiceVoided and InvoicePaid (any details), so it has no
# deleteAccount function.
_CATALOGUE_APP = """
import sys
import aws_cdk as cdk
from audit_stack import AuditPipeline, EventType

INVOICE_VOIDED = EventType("InvoiceVoided", details_schema={
    "type": "object",
    "properties": {
        "invoice_id": {"type": "string", "pattern": "^INV-[0-9]+$"},
        "amount_cents": {"type": "integer", "minimum": 0},
    },
    "required": ["invoice_id"],
    "additionalProperties": False,
})
app = cdk.App(outdir=sys.argv[1])
stack = cdk.Stack(app, "CatalogueStack")
gone = cdk.RemovalPolicy.DESTROY
AuditPipeline(stack, "Audit", event_types=["AccountDeleted", INVOICE_VOIDED], removal_policy=gone)
AuditPipeline(stack, "Billing", event_types=[INVOICE_VOIDED, "InvoicePaid"], removal_policy=gone)
app.synth()
"""


def _synthesize_app(source: str, outdir: Path) -> Path:
    """Run an app's Python source with cdk.json's context into ``outdir`` (in a child process:
    the test process itself never starts jsii's Node.js kernel)."""
    return synth.synthesize_python_app(
        ["-c", source, str(outdir)], outdir, cwd=ROOT, env=context_environment()
    )


def synthesize_with_props(outdir: Path, props: str) -> Path:
    """AuditStack as app.py builds it, with ``props`` (Python source of a dict) for its pipeline,
    in ``outdir``: a copy of the assembly built once for these sources and props."""
    source = _APP_WITH_PROPS.replace("{props}", props)
    name = f"props-{hashlib.sha256(props.encode()).hexdigest()[:8]}"
    built = cached_assembly(name, lambda out: _synthesize_app(source, out))
    shutil.copytree(built, outdir, dirs_exist_ok=True)
    return outdir


@pytest.fixture(scope="session")
def two_pipelines_assembly() -> Path:
    """The cdk.out of an app with stack MyStack holding pipelines Audit and Tenants/Audit."""
    return cached_assembly("two-pipelines", lambda out: _synthesize_app(_TWO_PIPELINES_APP, out))


@pytest.fixture(scope="session")
def subject_in_clear_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cloud assembly of AuditStack with subject_in_clear=True."""
    return synthesize_with_props(
        tmp_path_factory.mktemp("subject-in-clear.out"), '{"subject_in_clear": True}'
    )


@pytest.fixture(scope="session")
def catalogue_assembly() -> Path:
    """The cdk.out of stack CatalogueStack: pipeline Audit (AccountDeleted and InvoiceVoided)
    and pipeline Billing (InvoiceVoided and InvoicePaid, no deleteAccount function)."""
    return cached_assembly(
        "catalogue", lambda out: _synthesize_app(_CATALOGUE_APP, out), _CATALOGUE_APP
    )
