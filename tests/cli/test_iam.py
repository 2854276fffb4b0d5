"""The CLI against an emulator that enforces IAM: the template's own denies apply to the
account's administrator, as on AWS."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit_stack.local import LocalAuditPipeline
from tests.cli.conftest import run_audit


def test_trail_as_the_administrator_is_refused_the_pseudonym_secret_with_the_grant_to_ask_for(
    cloud_assembly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The secret's policy denies GetSecretValue to every principal not granted a lookup, the
    administrator included: an explicit deny in a resource-based policy beats an identity
    allow (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
    Reading the table and the stack stays allowed."""
    with LocalAuditPipeline(cloud_assembly) as pipeline:
        assert pipeline.enforce_iam
        trail = run_audit(
            capsys, "--endpoint-url", pipeline.endpoint_url, "trail", "someone@mail.com"
        )
        assert trail.exit_code == 1
        assert "grant_lookup" in trail.stderr
        status = run_audit(capsys, "--endpoint-url", pipeline.endpoint_url, "status", "--json")
        assert status.exit_code in {0, 3}, status.stderr
