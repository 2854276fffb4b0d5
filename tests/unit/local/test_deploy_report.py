"""What a local deployment reports in words (verbose output and the demo's counts), from the
deployment alone."""

from __future__ import annotations

from audit_stack.local.deploy.model import Deployment
from audit_stack.local.deploy.report import deployment_report, resource_counts
from audit_stack.local.deploy.template import PhysicalResource


def _deployment(stack_name: str, *, skipped_role: bool) -> Deployment:
    deployment = Deployment(stack_name, "us-east-1", "123456789012")
    deployment.resource_types = {"Queue": "AWS::SQS::Queue", "Role": "AWS::IAM::Role"}
    deployment.resources = {
        "Queue": PhysicalResource("https://sqs.local/q"),
        "Role": PhysicalResource("Stack-Role"),
    }
    if skipped_role:
        deployment.skipped = [("Role", "AWS::IAM::Role", "policies enforced by the emulator")]
    deployment.not_reproduced = [("Rules", "CheckBootstrapVersion", "deploy-time assertion")]
    return deployment


def test_the_report_names_each_resource_created_skipped_and_not_reproduced() -> None:
    lines = deployment_report(_deployment("Stack", skipped_role=True))

    assert lines == [
        "deployed stack Stack",
        "created AWS::SQS::Queue Queue: https://sqs.local/q",
        "skipped AWS::IAM::Role Role: policies enforced by the emulator",
        "not reproduced: Rules.CheckBootstrapVersion: deploy-time assertion",
    ]


def test_a_skipped_resource_is_not_also_reported_as_created() -> None:
    deployment = _deployment("Stack", skipped_role=True)

    assert deployment.created_types == {"Queue": "AWS::SQS::Queue"}
    assert not any(
        line.startswith("created AWS::IAM::Role") for line in deployment_report(deployment)
    )


def test_the_counts_add_up_over_every_stack_deployed() -> None:
    stacks = [
        _deployment("Shared", skipped_role=False),
        _deployment("App", skipped_role=True),
    ]

    assert resource_counts(stacks) == "3 resources created, 1 skipped (off the data path)"
