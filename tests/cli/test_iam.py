"""The CLI against an emulator that enforces IAM: the template's own denies apply to the
account's administrator, as on AWS."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from audit_stack import synth
from audit_stack.local import LocalAuditPipeline
from audit_stack.local.__main__ import usage
from tests.cdk_app import ROOT, context_environment
from tests.cli.conftest import run_audit
from tests.conftest import cached_assembly


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


# An operator role granted grant_read on the second of two pipelines (the consumer app's shape).
_READER_APP = """
import sys
import aws_cdk as cdk
from audit_stack import AuditPipeline

app = cdk.App(outdir=sys.argv[1])
stack = cdk.Stack(app, "OpsStack")
gone = cdk.RemovalPolicy.DESTROY
AuditPipeline(stack, "Audit", removal_policy=gone)
billing = AuditPipeline(stack, "Billing", event_types=["InvoicePaid"], removal_policy=gone)
billing.grant_read(cdk.aws_iam.Role(stack, "Reader", assumed_by=cdk.aws_iam.AccountRootPrincipal()))
app.synth()
"""


def _reader_assembly() -> Path:
    def build(outdir: Path) -> object:
        return synth.synthesize_python_app(
            ["-c", _READER_APP, str(outdir)], outdir, cwd=ROOT, env=context_environment()
        )

    return cached_assembly("reader-role", build, _READER_APP)


def test_an_operator_granted_grant_read_names_the_stack_and_reads_on_the_emulator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """grant_read gives GetTemplate and ListStackResources on the pipeline's stack, not
    DescribeStacks on every stack: the emulator checks the stack's ARN (as AWS does), the CLI
    asks the operator for --stack instead of failing on the listing, and `up --as` prints its
    usage with the emulator's own view of the resources."""
    assembly = _reader_assembly()
    template = json.loads((assembly / "OpsStack.template.json").read_text())
    (reader,) = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role" and logical_id.startswith("Reader")
    ]
    with LocalAuditPipeline(assembly, pipeline="Billing", principal=reader) as pipeline:
        assert pipeline.table_name in usage(pipeline)
        url = pipeline.endpoint_url

        unnamed = run_audit(capsys, "--endpoint-url", url, "events", "--type", "InvoicePaid")
        assert unnamed.exit_code == 1
        assert "name the emulator's stack with --stack" in unnamed.stderr

        target = ("--endpoint-url", url, "--stack", "OpsStack", "--pipeline", "Billing")
        events = run_audit(capsys, *target, "events", "--type", "InvoicePaid", "--json")
        assert events.exit_code == 0, events.stderr
        assert json.loads(events.stdout)["events"] == []
        # Only the pipeline granted: the other one's table is not the reader's to query.
        other = ("--endpoint-url", url, "--stack", "OpsStack", "--pipeline", "Audit")
        refused = run_audit(capsys, *other, "events", "--type", "AccountDeleted")
        assert refused.exit_code != 0
        assert "AccessDenied" in refused.stderr


def _suggested(text: str) -> list[list[str]]:
    """The `audit ...` command lines that `up` suggests, as argument lists (without `audit`)."""
    return [
        shlex.split(line.strip())[1:] for line in text.splitlines() if line.startswith("  audit ")
    ]


@pytest.mark.parametrize("enforce_iam", [True, False], ids=["enforced", "not-enforced"])
def test_every_command_up_suggests_runs_as_printed_and_the_denied_ones_say_why(
    cloud_assembly: Path, capsys: pytest.CaptureFixture[str], enforce_iam: bool
) -> None:
    """`up`'s hints are for copying: each one it suggests succeeds as the outside caller; the
    ones IAM would deny that caller are listed apart, with the action denied and how to get it."""
    with LocalAuditPipeline(cloud_assembly, enforce_iam=enforce_iam) as pipeline:
        text = usage(pipeline)
        suggested = _suggested(text)
        # After the target: `--endpoint-url URL --region REGION` (this emulator's port).
        assert [argv[:4] for argv in suggested] == [
            ["--endpoint-url", pipeline.endpoint_url, "--region", pipeline.region]
        ] * len(suggested)
        assert [argv[4] for argv in suggested] == (
            ["delete-account", "events", "status", "dlq"]
            if enforce_iam
            else ["delete-account", "publish", "trail", "events", "status", "dlq"]
        )
        for argv in suggested:
            run = run_audit(capsys, *argv)
            assert run.exit_code == 0, (argv, run.stderr)
        if enforce_iam:
            assert "Denied to arn:aws:iam::123456789012:role/Administrator" in text
            denied = text[text.index("Denied to") :]
            assert "    audit --endpoint-url" in denied and " publish AccountDeleted " in denied
            assert denied.count("      denied secretsmanager:GetSecretValue on arn:aws:") == 2
            assert "--as ROLE_ARN" in text and "--no-enforce-iam" in text
        else:
            assert "Denied to" not in text
