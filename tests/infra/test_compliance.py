"""cdk-nag AwsSolutions and cfn-lint on the app's template and on an importing app's template."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from cfnlint.api import lint

from audit_stack import AuditPipeline
from tests.cdk_app import new_app, synth_with_cdk_nag

pytestmark = pytest.mark.synth  # in-process CDK apps: `make test`, not `make unit`


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
    report_file = cloud_assembly / "validation-report.json"
    if report_file.is_file():
        report = json.loads(report_file.read_text())
        # The construct annotations (the app's own synth-time warnings, e.g. no alarm
        # subscriber) are reported beside the plugins; they are warnings, not findings.
        plugins = [r for r in report.get("pluginReports", []) if "summary" in r]
        assert all(r["summary"]["status"] == "success" for r in plugins)
        annotations = [r for r in report.get("pluginReports", []) if "summary" not in r]
        assert all(v["severity"] == "warning" for r in annotations for v in r.get("violations", []))
        return
    # cdk-nag 2, beside the lowest supported aws-cdk-lib (`make test-lowest`): its CSV report.
    (csv_report,) = cloud_assembly.glob("AwsSolutions-*-NagReport.csv")
    rows = list(csv.DictReader(csv_report.read_text().splitlines()))
    assert {row["Compliance"] for row in rows} == {"Compliant", "Suppressed"}


def test_cdk_nag_rejects_an_insecure_resource() -> None:
    # Guards the check above: the plugin is wired so that a violation fails synthesis.
    app = new_app()
    stack = cdk.Stack(app, "Insecure")
    sqs.Queue(stack, "Plain", encryption=sqs.QueueEncryption.UNENCRYPTED)
    with pytest.raises(Exception, match="AwsSolutions-SQS"):
        synth_with_cdk_nag(app)


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
        seal_interval=cdk.Duration.minutes(15),
    )
    operator = cdk.aws_iam.Role(stack, "Operator", assumed_by=cdk.aws_iam.AccountRootPrincipal())
    pipeline.grant_redrive(operator)
    pipeline.grant_verify(operator)
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
    assert len(pipeline_with_action.alarms) == 14
    in_clear = AuditPipeline(
        stack,
        "AuditInClear",
        subject_in_clear=True,
        event_type_index=False,
    )
    in_clear.grant_lookup(other_publisher)  # nothing to grant: no secret
    pipeline.grant_lookup(other_publisher)
    assert in_clear.pseudonym_secret is None and in_clear.event_type_index_shards == 0
    AuditPipeline(stack, "AuditWideIndex", event_type_index_shards=64)
    assembly = synth_with_cdk_nag(app)  # raises on any unacknowledged cdk-nag finding
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
        {
            "FilterPolicy": {
                "event_type": ["AccountDeleted", "AccountCreated", "AuditRecordRedacted"]
            }
        },
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
    assert len(alarms) == 14
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


def test_importing_app_encrypts_the_pseudonym_secret_with_its_key_and_grants_lookups(
    importing_app_template: dict[str, Any],
) -> None:
    resources = importing_app_template["Resources"]
    key_id = next(k for k, r in resources.items() if r["Type"] == "AWS::KMS::Key")
    secrets = {
        k: r
        for k, r in resources.items()
        if r["Type"] == "AWS::SecretsManager::Secret" and "PseudonymSecret" in k
    }
    # "Audit" (customer key), "AuditWithAlarms", "AuditWideIndex"; none for "AuditInClear".
    assert len(secrets) == 3
    writer_keys = [
        r
        for k, r in resources.items()
        if r["Type"] == "AWS::SecretsManager::Secret" and "WriterKey" in k
    ]
    assert len(writer_keys) == 4  # every pipeline has one, in clear or not
    audit_secret = next(r for k, r in secrets.items() if k.startswith("AuditPseudonymSecret"))
    assert audit_secret["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    role_policies = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy"
        and any("OtherService" in role["Ref"] for role in r["Properties"]["Roles"])
    ]
    actions = {
        action
        for statements in role_policies
        for statement in statements
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    }
    assert {"secretsmanager:GetSecretValue", "kms:Decrypt"} <= actions
    other_role = next(k for k, r in resources.items() if k.startswith("OtherService"))
    audit_policy = next(
        r["Properties"]["ResourcePolicy"]["Statement"][0]
        for k, r in resources.items()
        if r["Type"] == "AWS::SecretsManager::ResourcePolicy" and k.startswith("AuditPseudonym")
    )
    readers = audit_policy["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert {"Fn::GetAtt": [other_role, "Arn"]} in readers and len(readers) == 3


def test_grant_lookup_needs_a_role_or_user_and_says_so() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Lookup")
    pipeline = AuditPipeline(stack, "Audit")
    with pytest.raises(ValueError, match="AuditPipeline grant_lookup: the grantee must be"):
        pipeline.grant_lookup(cdk.aws_iam.ServicePrincipal("ecs-tasks.amazonaws.com"))


def test_importing_app_gets_the_clear_and_index_props(
    importing_app_template: dict[str, Any],
) -> None:
    resources = importing_app_template["Resources"]
    functions = {
        k: r["Properties"]["Environment"]["Variables"]
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function"
    }
    # The publisher and the recorder name subjects; the sealer handles hashes only.
    in_clear = {
        k: v
        for k, v in functions.items()
        if k.startswith(("AuditInClearDeleteAccount", "AuditInClearRecordAuditEvent"))
    }
    assert {v.get("SUBJECT_IN_CLEAR") for v in in_clear.values()} == {"true"}
    assert all("PSEUDONYM_SECRET_ARN" not in v for v in in_clear.values())
    tables = {
        k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table"
    }
    in_clear_table = next(v for k, v in tables.items() if k.startswith("AuditInClear"))
    assert "GlobalSecondaryIndexes" not in in_clear_table
    wide = next(
        v for k, v in functions.items() if k.startswith("AuditWideIndexRecordAuditEventFunction")
    )
    assert wide["EVENT_TYPE_INDEX_SHARDS"] == "64"
    recorder_in_clear = next(
        v for k, v in in_clear.items() if k.startswith("AuditInClearRecordAuditEventFunction")
    )
    assert recorder_in_clear["EVENT_TYPE_INDEX_SHARDS"] == "0"


def test_importing_app_template_has_no_cfn_lint_errors(
    importing_app_template: dict[str, Any],
) -> None:
    assert cfn_lint_errors(importing_app_template) == []
