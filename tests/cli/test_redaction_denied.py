"""``audit redact`` as the account's administrator, on the emulator with IAM enforced: denied.

Its own module: one emulator runs per process, and test_redaction.py's runs as the break-glass
role for the whole of its module."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from audit_stack.lambda_code import contract
from audit_stack.local import LocalAuditPipeline
from tests.cli.conftest import run_audit
from tests.cli.test_redaction import ALICE, REASON, STACK, assembly

__all__ = ["assembly"]  # the fixture, shared


def test_the_administrator_may_not_redact(
    assembly: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The account's administrator (AdministratorAccess): the table's policy denies its
    UpdateItem, an explicit deny that no identity allow overrides; `audit redact` stops before
    writing anything (it cannot even look the subject up: the secret's policy)."""
    with LocalAuditPipeline(assembly) as pipeline:
        assert pipeline.principal.endswith(":role/Administrator")
        with pytest.raises(ClientError) as denied:
            pipeline.client("dynamodb").update_item(
                TableName=pipeline.table_name,
                Key={
                    contract.PARTITION_KEY: {"S": "a" * 64},
                    contract.SORT_KEY: {"S": "2026-01-01T00:00:00.000000Z#x"},
                },
                UpdateExpression="SET #at = :at REMOVE details",
                ExpressionAttributeNames={"#at": contract.REDACTED_AT_ATTRIBUTE},
                ExpressionAttributeValues={":at": {"S": "2026-01-01T00:00:00.000000Z"}},
            )
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "OnlyRedactorsChange" in str(denied.value)
        subject_file = tmp_path / "subject"
        subject_file.write_text(f"{ALICE}\n")
        run = run_audit(
            capsys,
            "--endpoint-url",
            pipeline.endpoint_url,
            "--stack",
            STACK,
            "redact",
            "--subject-file",
            str(subject_file),
            "--reason",
            REASON,
        )
        assert run.exit_code == 1
        assert "grant_lookup" in run.stderr
