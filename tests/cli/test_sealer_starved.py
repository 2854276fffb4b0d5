"""On the emulator: records the sealer never reads, because the table's stream trimmed them (24
hours, DynamoDB's stream lifetime: a sealer failing for a day, say) or because the stream was
turned off, are never sealed, and `audit verify` names each one once the seal window is over. A
drop by starving the sealer is detected, not silent."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest

from audit_stack.cli.verify import utc_now
from audit_stack.local import LocalAuditPipeline
from tests.e2e.helpers import subject_of

from .conftest import OPERATOR_ENFORCE_IAM, run_audit


def _sealed_once(
    pipeline: LocalAuditPipeline, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str]]:
    """`audit` against ``pipeline`` ((exit code, stdout)), after one record recorded and sealed."""

    def audit(*argv: str) -> tuple[int, str]:
        run = run_audit(capsys, "--endpoint-url", pipeline.endpoint_url, *argv)
        return run.exit_code, run.stdout

    assert audit("delete-account", "sealed@example.com")[0] == 0
    pipeline.run_until_idle(timeout=60)
    return audit


def test_records_the_stream_trimmed_before_the_sealer_read_them_are_findings(
    cloud_assembly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalAuditPipeline(cloud_assembly, enforce_iam=OPERATOR_ENFORCE_IAM) as pipeline:
        audit = _sealed_once(pipeline, capsys)
        with pipeline.stream_sources_paused():  # the sealer reads nothing for a day
            assert audit("delete-account", "lost@example.com")[0] == 0
            pipeline.run_until_idle(timeout=60)  # recorded
            pipeline.advance_time(25 * 3600)
        pipeline.run_until_idle(timeout=60)  # the stream trims the record unread

        sealer_batches = [
            found.event["Records"]
            for found in pipeline.invocations("sealer")
            if isinstance(found.event, dict) and found.event.get("Records")
        ]
        lost = subject_of(pipeline, "lost@example.com")
        delivered = [r["dynamodb"]["Keys"]["subject"]["S"] for b in sealer_batches for r in b]
        assert lost not in delivered and subject_of(pipeline, "sealed@example.com") in delivered

        a_day_later = utc_now() + timedelta(hours=25)
        with mock.patch("audit_stack.cli.verify.utc_now", return_value=a_day_later):
            code, out = audit("verify", "--json")
        assert code == 1
        findings = json.loads(out)["findings"]
        assert [(f["kind"], f["subject"]) for f in findings if f["subject"] == lost] == [
            ("not in any digest", lost)
        ]
        # And the chain has been silent for a day, more than the heartbeat allows (the emulator
        # runs no schedule; on AWS the sealing-stalled alarm fires long before the trim).
        (silent,) = [f["detail"] for f in findings if f["subject"] != lost]
        assert silent.startswith("no checkpoint anchored since digest")


def test_records_written_while_the_stream_is_off_are_findings_after_the_seal_window(
    cloud_assembly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalAuditPipeline(cloud_assembly, enforce_iam=OPERATOR_ENFORCE_IAM) as pipeline:
        audit = _sealed_once(pipeline, capsys)
        # The threat model's "disables the table's stream": UpdateTable, alarmed (control changed).
        pipeline.client("dynamodb").update_table(
            TableName=pipeline.table_name, StreamSpecification={"StreamEnabled": False}
        )
        assert audit("delete-account", "unstreamed@example.com")[0] == 0
        pipeline.run_until_idle(timeout=60)
        unstreamed = subject_of(pipeline, "unstreamed@example.com")

        code, out = audit("verify", "--json")
        assert code == 0  # within the seal window the record may still be on its way
        assert [(f["kind"], f["subject"]) for f in json.loads(out)["findings"]] == [
            ("not yet sealed", unstreamed)
        ]
        eleven_minutes_later = utc_now() + timedelta(minutes=11)
        with mock.patch("audit_stack.cli.verify.utc_now", return_value=eleven_minutes_later):
            code, out = audit("verify", "--json")
        assert code == 1
        assert [(f["kind"], f["subject"]) for f in json.loads(out)["findings"]] == [
            ("not in any digest", unstreamed)
        ]
