"""Fixtures of the operator CLI tests: an emulator per module, the CLI run in-process, isolation.

Every test runs with an AWS configuration of its own (empty config and credentials files, no
instance metadata) and may connect to loopback addresses only: nothing reaches real AWS.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from audit_stack.cli import main
from audit_stack.local import LocalAuditPipeline

# The Lambda asset's root, as on Lambda: tests use the recorder's parser as an oracle.
LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
if str(LAMBDAS_DIR) not in sys.path:
    sys.path.insert(0, str(LAMBDAS_DIR))

_AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)


@dataclass(frozen=True)
class Run:
    """One `audit` run: exit code and what it printed."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


Audit = Callable[..., Run]


@pytest.fixture(autouse=True)
def isolated_aws_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials, profile or region from the machine running the tests."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        empty = tmp_path / name.lower()
        empty.write_text("")
        monkeypatch.setenv(name, str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address this process connects to during the test; anything but loopback fails it."""
    made: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        made.append(address)
        host = address[0] if isinstance(address, tuple) else None
        try:
            loopback = host is not None and ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback and self.family != socket.AF_UNIX:
            raise AssertionError(f"a test connected to {address!r}, which is not loopback")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return made


# The CLI's operator on AWS is a role granted AuditPipeline.grant_lookup (to turn an address into
# its subject) and grant_redrive; the app's stack grants no such role, and the default outside
# principal, an administrator, is denied the pseudonym secret by its policy as on AWS
# (tests/cli/test_iam.py). So these CLI tests run with IAM not enforced.
OPERATOR_ENFORCE_IAM = False


@pytest.fixture(scope="module")
def pipeline(cloud_assembly: Path) -> Iterator[LocalAuditPipeline]:
    """The synthesized stack on the emulator, shared by the tests of one module."""
    with LocalAuditPipeline(cloud_assembly, enforce_iam=OPERATOR_ENFORCE_IAM) as running:
        yield running


def run_audit(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = main(list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


@pytest.fixture
def audit(pipeline: LocalAuditPipeline, capsys: pytest.CaptureFixture[str]) -> Audit:
    """`audit ARGS` in-process against the module's emulator (--endpoint-url)."""

    def run(*argv: str) -> Run:
        return run_audit(capsys, "--endpoint-url", pipeline.endpoint_url, *argv)

    return run


@pytest.fixture
def audit_anywhere(capsys: pytest.CaptureFixture[str]) -> Audit:
    """`audit ARGS` in-process, with no target chosen for it."""

    def run(*argv: str) -> Run:
        return run_audit(capsys, *argv)

    return run
