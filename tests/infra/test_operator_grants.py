"""``grant_read`` and ``grant_operate`` allow every AWS call of the ``audit`` commands they are
for, read from the commands' own source; typed metric options; the secret's ARN, typed."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam

from audit_stack import AuditPipeline
from tests.cdk_app import new_app

pytestmark = pytest.mark.synth

CLI = Path(__file__).resolve().parents[2] / "audit_stack"

# boto3 operation -> IAM action, for every operation the CLI calls on AWS.
_ACTIONS = {
    "get_template": "cloudformation:GetTemplate",
    "list_stack_resources": "cloudformation:ListStackResources",
    "query": "dynamodb:Query",
    "scan": "dynamodb:Scan",
    "get_public_key": "kms:GetPublicKey",
    "get_secret_value": "secretsmanager:GetSecretValue",
    "list_secret_version_ids": "secretsmanager:ListSecretVersionIds",
    "get_queue_attributes": "sqs:GetQueueAttributes",
    "receive_message": "sqs:ReceiveMessage",
    "change_message_visibility_batch": "sqs:ChangeMessageVisibility",
    "start_message_move_task": "sqs:StartMessageMoveTask",
    "list_message_move_tasks": "sqs:ListMessageMoveTasks",
    "delete_message": "sqs:DeleteMessage",
    "send_message": "sqs:SendMessage",
    "describe_alarms": "cloudwatch:DescribeAlarms",
    "get_metric_data": "cloudwatch:GetMetricData",
    "invoke": "lambda:InvokeFunction",
}
# Called only against the emulator (to find its one stack), never on AWS.
_EMULATOR_ONLY = {"describe_stacks"}

# The modules each command runs (cli/target.py: every command finds its stack first).
_READ_COMMANDS = {
    "trail": ("cli/target.py", "cli/trail.py", "cli/queries.py"),
    "events": ("cli/target.py", "cli/events.py", "cli/queries.py"),
    "verify": ("cli/target.py", "cli/verify.py", "verify.py"),
}
_OPERATE_COMMANDS = {
    "status": ("cli/target.py", "cli/status.py"),
    "dlq show / dlq redrive": ("cli/target.py", "cli/dlq.py"),
    "seal": ("cli/target.py", "cli/seal.py"),
}
_CALL = re.compile(r"\.(?:get_paginator\(\")?([a-z_]+)[\"(]")


def actions_called(modules: tuple[str, ...]) -> set[str]:
    """The IAM actions of the boto3 operations these modules call."""
    operations = {
        name
        for module in modules
        for name in _CALL.findall((CLI / module).read_text())
        if name in _ACTIONS or name in _EMULATOR_ONLY
    }
    return {_ACTIONS[name] for name in operations - _EMULATOR_ONLY}


@pytest.fixture(scope="module")
def policies() -> dict[str, list[dict[str, Any]]]:
    """The identity policy statements of a role given grant_read and of one given
    grant_operate, by role."""
    app = new_app()
    stack = cdk.Stack(app, "Ops", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    pipeline = AuditPipeline(stack, "Audit")
    principal = iam.AccountRootPrincipal()
    reader = iam.Role(stack, "Reader", assumed_by=principal)
    operator = iam.Role(stack, "Operator", assumed_by=principal)
    pipeline.grant_read(reader)
    pipeline.grant_operate(operator)
    template = app.synth().get_stack_by_name("Ops").template
    statements: dict[str, list[dict[str, Any]]] = {"Reader": [], "Operator": []}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for role in resource["Properties"]["Roles"]:
            name = next((n for n in statements if role["Ref"].startswith(n)), None)
            if name is not None:
                statements[name] += resource["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    listed = statement["Action"]
    return [listed] if isinstance(listed, str) else list(listed)


def _allowed(statements: list[dict[str, Any]], action: str) -> bool:
    return any(
        statement["Effect"] == "Allow" and any(fnmatchcase(action, a) for a in _actions(statement))
        for statement in statements
    )


@pytest.mark.parametrize("command", sorted(_READ_COMMANDS))
def test_grant_read_allows_every_call_of_the_reading_commands(
    policies: dict[str, list[dict[str, Any]]], command: str
) -> None:
    called = actions_called(_READ_COMMANDS[command])
    assert called  # the source was read
    assert {a for a in called if not _allowed(policies["Reader"], a)} == set()


@pytest.mark.parametrize("command", sorted(_OPERATE_COMMANDS))
def test_grant_operate_allows_every_call_of_the_operating_commands(
    policies: dict[str, list[dict[str, Any]]], command: str
) -> None:
    called = actions_called(_OPERATE_COMMANDS[command])
    assert called
    assert {a for a in called if not _allowed(policies["Operator"], a)} == set()


def test_grant_read_does_not_let_the_reader_change_anything(
    policies: dict[str, list[dict[str, Any]]],
) -> None:
    for action in ("sqs:SendMessage", "sqs:DeleteMessage", "lambda:InvokeFunction"):
        assert not _allowed(policies["Reader"], action)


def test_only_metric_data_is_granted_on_every_resource(
    policies: dict[str, list[dict[str, Any]]],
) -> None:
    on_everything = {
        action
        for statement in policies["Reader"] + policies["Operator"]
        if statement["Resource"] == "*"
        for action in _actions(statement)
    }
    # GetMetricData has no resource-level permissions; everything else names its resources.
    assert on_everything == {"cloudwatch:GetMetricData"}


def test_metric_methods_take_typed_options_and_keep_their_defaults() -> None:
    pipeline = AuditPipeline(cdk.Stack(new_app(), "Metrics"), "Audit")
    default = pipeline.metric_recorder_errors()
    assert (default.statistic, default.period.to_minutes()) == ("Sum", 5)
    tuned = pipeline.metric_recorder_errors(period=cdk.Duration.minutes(1), statistic="Maximum")
    assert (tuned.statistic, tuned.period.to_minutes()) == ("Maximum", 1)
    assert pipeline.metric_events_recorded(label="Recorded").label == "Recorded"


def test_pseudonym_secret_arn_is_a_string_or_says_why_there_is_none() -> None:
    app = new_app()
    pipeline = AuditPipeline(cdk.Stack(app, "WithSecret"), "Audit")
    assert pipeline.pseudonym_secret is not None
    assert pipeline.pseudonym_secret_arn == pipeline.pseudonym_secret.secret_arn
    in_clear = AuditPipeline(cdk.Stack(app, "InClear"), "Audit", subject_in_clear=True)
    with pytest.raises(ValueError, match="subject_in_clear=True"):
        _ = in_clear.pseudonym_secret_arn
