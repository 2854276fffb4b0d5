"""pytest fixtures for the embedded emulator: ``local_audit_pipeline`` and the assembly it deploys.

Opt in from the top-level conftest.py: ``pytest_plugins = ["audit_stack.local.pytest_plugin"]``.
The cloud assembly comes from the suite's own ``cloud_assembly`` fixture when it has one (return
the ``cdk.out`` path), else it is synthesized once per session with the project's CDK CLI.
The stack and the pipeline come from the ini options ``audit_stack`` and ``audit_pipeline``
(pytest.ini, or ``[tool.pytest.ini_options]``), or from overriding the fixtures
``local_audit_stack_name`` and ``local_audit_pipeline_id``; by default, the only ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit_stack import synth
from audit_stack.local.pipeline import LocalAuditPipeline

_SYNTH_TIMEOUT_SECONDS = 600
_STACK_OPTION = "audit_stack"
_PIPELINE_OPTION = "audit_pipeline"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _STACK_OPTION,
        "local_audit_pipeline: the stack to deploy (default: the only one with an AuditPipeline)",
        default="",
    )
    parser.addini(
        _PIPELINE_OPTION,
        "local_audit_pipeline: the AuditPipeline's construct id or path (default: the only one)",
        default="",
    )


def _ini(config: pytest.Config, name: str) -> str | None:
    try:
        value = config.getini(name)
    except ValueError:
        # The fixtures were imported without the plugin's hooks: no such ini option.
        return None
    return str(value) or None


def synthesize(root: Path, outdir: Path) -> Path:
    """``cdk synth`` of the CDK app in ``root`` (its cdk.json) into ``outdir``."""
    if not (root / "cdk.json").is_file():
        raise pytest.UsageError(
            f"local_audit_pipeline needs a cloud assembly: no cdk.json in the rootdir {root}; "
            "define a `cloud_assembly` fixture that returns your cdk.out path"
        )
    try:
        synth.cdk_command(root)
    except synth.SynthesisError as error:
        raise pytest.UsageError(
            "local_audit_pipeline needs a cloud assembly: define a `cloud_assembly` fixture that "
            f"returns your cdk.out path, or install the CDK CLI ({error})"
        ) from error
    return synth.synthesize(root, outdir, timeout=_SYNTH_TIMEOUT_SECONDS)


@pytest.fixture(scope="session")
def local_audit_assembly(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The cloud assembly to deploy: the suite's ``cloud_assembly``, or a fresh synthesis."""
    try:
        return Path(request.getfixturevalue("cloud_assembly"))
    except pytest.FixtureLookupError:
        return synthesize(request.config.rootpath, tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def local_audit_stack_name(request: pytest.FixtureRequest) -> str | None:
    """The stack to deploy: the ``audit_stack`` ini option; None for the only one."""
    return _ini(request.config, _STACK_OPTION)


@pytest.fixture(scope="session")
def local_audit_pipeline_id(request: pytest.FixtureRequest) -> str | None:
    """The pipeline of ``invoke("publisher")`` and the queues: the ``audit_pipeline`` ini option;
    None for the only one."""
    return _ini(request.config, _PIPELINE_OPTION)


@pytest.fixture(scope="session")
def local_audit_principal() -> str | None:
    """The IAM principal the test calls as (``client()``, ``invoke()``): None for the account's
    administrator role. Override it to test as a role of your stack."""
    return None


@pytest.fixture(scope="session")
def local_audit_enforce_iam() -> bool:
    """Whether the emulator enforces IAM and resource policies (override with False to allow
    every request)."""
    return True


@pytest.fixture
def local_audit_pipeline(
    local_audit_assembly: Path, request: pytest.FixtureRequest
) -> Iterator[LocalAuditPipeline]:
    """A freshly deployed stack on the embedded emulator, stopped after the test."""
    stack = _fixture_or_ini(request, "local_audit_stack_name", _STACK_OPTION)
    pipeline_id = _fixture_or_ini(request, "local_audit_pipeline_id", _PIPELINE_OPTION)
    principal = _fixture_or_default(request, "local_audit_principal", None)
    enforce_iam = _fixture_or_default(request, "local_audit_enforce_iam", True)
    with LocalAuditPipeline(
        local_audit_assembly,
        stack,
        pipeline=pipeline_id,
        principal=principal,
        enforce_iam=bool(enforce_iam),
    ) as pipeline:
        yield pipeline


def _fixture_or_default(request: pytest.FixtureRequest, fixture: str, default: Any) -> Any:
    try:
        return request.getfixturevalue(fixture)
    except pytest.FixtureLookupError:
        return default


def _fixture_or_ini(request: pytest.FixtureRequest, fixture: str, option: str) -> str | None:
    # Looked up by name: a suite that imports only local_audit_pipeline (and the assembly
    # fixture) into its conftest, instead of loading the plugin, keeps working.
    try:
        value = request.getfixturevalue(fixture)
    except pytest.FixtureLookupError:
        return _ini(request.config, option)
    return str(value) if value else None
