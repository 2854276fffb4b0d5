"""cdk-nag AwsSolutions and cfn-lint on the app's template and on an importing app's template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import lint

from audit_stack import AuditPipeline
from tests.cdk_app import new_app


def cfn_lint_errors(template: dict[str, Any]) -> list[str]:
    matches = lint(json.dumps(template), regions=["us-east-1"])
    return [str(m) for m in matches if m.rule.severity == "error"]


def test_app_template_has_no_cfn_lint_errors(template_json: dict[str, Any]) -> None:
    assert cfn_lint_errors(template_json) == []


def test_app_synthesizes_with_cdk_nag_and_no_unacknowledged_findings(
    cloud_assembly: Path,
) -> None:
    # app.py registers AwsSolutionsChecks: a finding fails `cdk synth` (and the session
    # fixture). The report proves the plugin ran and found nothing unacknowledged.
    report = json.loads((cloud_assembly / "validation-report.json").read_text())
    assert report.get("pluginReports", []) == [] or all(
        r["summary"]["status"] == "success" for r in report["pluginReports"]
    )


def test_cdk_nag_rejects_an_insecure_resource() -> None:
    # Guards the check above: the plugin is wired so that a violation fails synthesis.
    app = new_app()
    stack = cdk.Stack(app, "Insecure")
    sqs.Queue(stack, "Plain", encryption=sqs.QueueEncryption.UNENCRYPTED)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match="AwsSolutions-SQS"):
        app.synth()


@pytest.fixture(scope="module")
def importing_app_template() -> dict[str, Any]:
    """An unrelated app that imports AuditPipeline with every prop turned."""
    app = new_app()
    stack = cdk.Stack(app, "ImportingStack", env=cdk.Environment(region="eu-west-1"))
    key = kms.Key(stack, "AuditKey", enable_key_rotation=True)
    pipeline = AuditPipeline(
        stack,
        "Audit",
        max_receive_count=3,
        batch_size=100,
        max_batching_window=cdk.Duration.seconds(5),
        max_concurrency=20,
        recorder_timeout=cdk.Duration.seconds(20),
        event_types=["AccountDeleted", "AccountCreated"],
        encryption_key=key,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    other_publisher = cdk.aws_iam.Role(
        stack, "OtherService", assumed_by=cdk.aws_iam.ServicePrincipal("ecs-tasks.amazonaws.com")
    )
    pipeline.grant_publish(other_publisher)
    alarm_topic = cdk.aws_sns.Topic(stack, "Pager", master_key=key, enforce_ssl=True)
    pipeline_with_action = AuditPipeline(
        stack,
        "AuditWithAlarms",
        alarm_action=cdk.aws_cloudwatch_actions.SnsAction(alarm_topic),
        dashboard=True,
        oldest_message_age_alarm=cdk.Duration.minutes(5),
    )
    assert len(pipeline_with_action.alarms) == 4
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
    return assembly.get_stack_by_name("ImportingStack").template  # type: ignore[no-any-return]


def test_importing_app_gets_its_props(importing_app_template: dict[str, Any]) -> None:
    template = cdk.assertions.Template.from_json(importing_app_template)
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {"VisibilityTimeout": 120, "RedrivePolicy": {"maxReceiveCount": 3}},
    )
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "BatchSize": 100,
            "MaximumBatchingWindowInSeconds": 5,
            "ScalingConfig": {"MaximumConcurrency": 20},
        },
    )
    template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"FilterPolicy": {"event_type": ["AccountDeleted", "AccountCreated"]}},
    )
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Delete",
            "Properties": cdk.assertions.Match.object_like(
                {
                    "DeletionProtectionEnabled": False,
                    "SSESpecification": cdk.assertions.Match.object_like(
                        {"SSEEnabled": True, "SSEType": "KMS"}
                    ),
                }
            ),
        },
    )


def test_importing_app_alarms_notify_its_action_and_it_gets_a_dashboard(
    importing_app_template: dict[str, Any],
) -> None:
    template = cdk.assertions.Template.from_json(importing_app_template)
    pager = next(
        k
        for k, r in importing_app_template["Resources"].items()
        if "Pager" in k and r["Type"] == "AWS::SNS::Topic"
    )
    alarms = template.find_resources(
        "AWS::CloudWatch::Alarm",
        {"Properties": {"AlarmActions": [{"Ref": pager}], "OKActions": [{"Ref": pager}]}},
    )
    assert len(alarms) == 4
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "ApproximateAgeOfOldestMessage", "Threshold": 300},
    )


def test_importing_app_encrypts_everything_with_its_key(
    importing_app_template: dict[str, Any],
) -> None:
    key_id = next(
        k for k, r in importing_app_template["Resources"].items() if r["Type"] == "AWS::KMS::Key"
    )
    key_arn = {"Fn::GetAtt": [key_id, "Arn"]}
    resources = importing_app_template["Resources"].values()
    # The first pipeline ("Audit") is the one built with the customer key.
    topic = next(r for r in resources if r["Type"] == "AWS::SNS::Topic")
    assert topic["Properties"]["KmsMasterKeyId"] == key_arn
    queues = [r for r in resources if r["Type"] == "AWS::SQS::Queue"][:2]
    assert [q["Properties"]["KmsMasterKeyId"] for q in queues] == [key_arn, key_arn]
    table = next(r for r in resources if r["Type"] == "AWS::DynamoDB::Table")
    assert table["Properties"]["SSESpecification"]["KMSMasterKeyId"] == key_arn


def test_importing_app_template_has_no_cfn_lint_errors(
    importing_app_template: dict[str, Any],
) -> None:
    assert cfn_lint_errors(importing_app_template) == []


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"max_receive_count": 0}, "max_receive_count: must be between 1 and 1000"),
        ({"batch_size": 11}, "batch_size: must be between 1 and 10 without a max_batching_window"),
        (
            {"batch_size": 10_001, "max_batching_window": cdk.Duration.seconds(1)},
            "batch_size: must be between 1 and 10000",
        ),
        ({"max_batching_window": cdk.Duration.minutes(6)}, "max_batching_window: must be at most"),
        ({"max_concurrency": 1}, "max_concurrency: must be between 2 and 1000"),
        ({"recorder_timeout": cdk.Duration.minutes(3)}, "recorder_timeout: must be between"),
        ({"event_types": []}, "event_types: must be a non-empty list"),
        ({"event_types": "AccountDeleted"}, "event_types: must be a non-empty list"),
        ({"event_types": ["account deleted"]}, "event_types: each must match"),
        (
            {"oldest_message_age_alarm": cdk.Duration.seconds(30)},
            "oldest_message_age_alarm: must be at least 1 minute",
        ),
    ],
)
def test_bad_props_fail_with_a_clear_message_and_leave_nothing_behind(
    props: dict[str, Any], message: str
) -> None:
    app = new_app()
    stack = cdk.Stack(app, "Bad")
    with pytest.raises(ValueError, match=f"AuditPipeline {message}"):
        AuditPipeline(stack, "Audit", **props)
    assert [c.node.id for c in stack.node.children] == []
