"""Customer-managed keys that deploy with cdk init's feature flags, imported keys that say what
they need, cross-account publishers, and props of the wrong type."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms

from audit_stack import AuditPipeline
from audit_stack.construct.encryption import (
    QueueSubscription,
    cloudwatch_alarms_statement,
    require_key_statement,
)
from tests.cdk_app import cdk_json_context, new_app, synth_with_cdk_nag
from tests.infra.test_compliance import cfn_lint_errors

pytestmark = pytest.mark.synth  # in-process CDK apps: `make test`, not `make unit`

IMPORTED_KEY_ARN = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
WORKLOAD_ACCOUNT = "222222222222"
ORGANIZATION = "o-a1b2c3d4e5"


@pytest.fixture(scope="module")
def assembly() -> cdk.cx_api.CloudAssembly:
    """One app, synthesized once with cdk.json's context and cdk-nag: a key in the pipeline's
    stack, a key in another stack, and an imported key."""
    app = new_app()
    same = cdk.Stack(app, "KeyInSameStack")
    key = kms.Key(same, "AuditKey", enable_key_rotation=True)
    AuditPipeline(same, "Audit", encryption_key=key).allow_publishers(
        accounts=[WORKLOAD_ACCOUNT], organization_id=ORGANIZATION
    )
    keys = cdk.Stack(app, "Keys")
    shared_key = kms.Key(keys, "SharedKey", enable_key_rotation=True)
    AuditPipeline(cdk.Stack(app, "KeyInOtherStack"), "Audit", encryption_key=shared_key)
    imported = cdk.Stack(app, "ImportedKey")
    imported_key = kms.Key.from_key_arn(imported, "Key", IMPORTED_KEY_ARN)
    pipeline = AuditPipeline(imported, "Audit", encryption_key=imported_key)
    pipeline.allow_publishers(accounts=[WORKLOAD_ACCOUNT])
    # What a stack does for an alarm topic encrypted with the same key.
    require_key_statement(
        pipeline,
        imported_key,
        cloudwatch_alarms_statement(pipeline),
        purpose="CloudWatch cannot send alarms to the topic encrypted with it otherwise",
    )
    return synth_with_cdk_nag(app)  # raises on a cycle, a cross-stack cycle or a cdk-nag finding


def _template(assembly: cdk.cx_api.CloudAssembly, stack: str) -> dict[str, Any]:
    template: dict[str, Any] = assembly.get_stack_by_name(stack).template
    return template


def _key_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    # The customer's key (the pipeline's own signing key is the other one).
    (key,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::KMS::Key" and r["Properties"].get("KeyUsage") != "SIGN_VERIFY"
    ]
    statements: list[dict[str, Any]] = key["Properties"]["KeyPolicy"]["Statement"]
    return statements


def test_the_shared_helper_synthesizes_with_cdk_init_feature_flags() -> None:
    assert cdk_json_context()["@aws-cdk/aws-sns-subscriptions:restrictSqsDescryption"] is True


@pytest.mark.parametrize("stack", ["KeyInSameStack", "KeyInOtherStack", "Keys", "ImportedKey"])
def test_customer_key_templates_have_no_circular_dependency(
    assembly: cdk.cx_api.CloudAssembly, stack: str
) -> None:
    # E3004 is cfn-lint's circular dependency; the fixture's synthesis already proves there is
    # no cross-stack cycle (CDK refuses one).
    assert cfn_lint_errors(_template(assembly, stack)) == []


def test_sns_may_use_the_key_for_this_accounts_topics_without_naming_the_topic(
    assembly: cdk.cx_api.CloudAssembly,
) -> None:
    for stack in ("KeyInSameStack", "Keys"):
        (statement,) = [
            s
            for s in _key_statements(_template(assembly, stack))
            if s.get("Principal") == {"Service": "sns.amazonaws.com"}
        ]
        assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert statement["Condition"]["StringEquals"] == {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"}
        }
        assert "aws:SourceArn" in statement["Condition"]["ArnLike"]
        assert "Topic" not in json.dumps(statement)


def test_queue_policy_still_accepts_only_the_pipelines_topic(
    assembly: cdk.cx_api.CloudAssembly,
) -> None:
    template = _template(assembly, "KeyInSameStack")
    topic_id = next(k for k, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic")
    policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::SQS::QueuePolicy"]
    send = [
        s
        for policy in policies
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "sqs:SendMessage" and s["Effect"] == "Allow"
    ]
    # The queue, and the subscription's dead-letter queue for what SNS could not deliver.
    assert len(send) == 2
    for statement in send:
        assert statement == {
            "Action": "sqs:SendMessage",
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Ref": topic_id}}},
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Resource": statement["Resource"],
        }


def test_allow_publishers_adds_the_topic_policy_for_accounts_and_the_organization(
    assembly: cdk.cx_api.CloudAssembly,
) -> None:
    template = _template(assembly, "KeyInSameStack")
    statements = {
        s.get("Sid"): s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SNS::TopicPolicy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    }
    accounts = statements["AllowAuditPublishersFromAccounts"]
    assert accounts["Action"] == "sns:Publish"
    assert WORKLOAD_ACCOUNT in json.dumps(accounts["Principal"])
    organization = statements["AllowAuditPublishersFromOrganization"]
    assert organization["Principal"] == {"AWS": "*"}
    assert organization["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORGANIZATION}}


def test_allow_publishers_adds_the_key_policy_they_need_through_sns_only(
    assembly: cdk.cx_api.CloudAssembly,
) -> None:
    statements = {s.get("Sid"): s for s in _key_statements(_template(assembly, "KeyInSameStack"))}
    for sid in ("AllowAuditPublishersFromAccounts", "AllowAuditPublishersFromOrganization"):
        statement = statements[sid]
        assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert "kms:ViaService" in statement["Condition"]["StringEquals"]
    assert (
        statements["AllowAuditPublishersFromOrganization"]["Condition"]["StringEquals"][
            "aws:PrincipalOrgID"
        ]
        == ORGANIZATION
    )


def test_an_imported_key_gets_a_warning_listing_each_statement_it_needs(
    assembly: cdk.cx_api.CloudAssembly,
) -> None:
    warnings = [
        str(message.entry.data)
        for message in assembly.get_stack_by_name("ImportedKey").messages
        if message.entry.type == "aws:cdk:warning"
    ]
    needed = [w for w in warnings if "cannot change its key policy" in w]
    assert len(needed) == 3
    sns_delivery = next(w for w in needed if "AllowSnsDeliveryToAuditQueues" in w)
    assert '"Service": "sns.amazonaws.com"' in sns_delivery
    assert "kms:GenerateDataKey" in sns_delivery
    publishers = next(w for w in needed if "AllowAuditPublishersFromAccounts" in w)
    assert WORKLOAD_ACCOUNT in publishers
    alarms = next(w for w in needed if "AllowCloudWatchAlarmsToEncryptedTopic" in w)
    assert '"Service": "cloudwatch.amazonaws.com"' in alarms


def test_the_queue_subscription_can_have_a_dead_letter_queue_of_its_own() -> None:
    stack = cdk.Stack(new_app(), "Subscription")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    topic = cdk.aws_sns.Topic(stack, "Topic", master_key=key)
    queue = cdk.aws_sqs.Queue(stack, "Queue", encryption_master_key=key)
    undeliverable = cdk.aws_sqs.Queue(stack, "Undeliverable", encryption_master_key=key)
    topic.add_subscription(
        QueueSubscription(queue, filter_policy={}, dead_letter_queue=undeliverable)
    )
    template = cdk.assertions.Template.from_stack(stack)
    undeliverable_id = stack.get_logical_id(undeliverable.node.default_child)  # type: ignore[arg-type]
    template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [undeliverable_id, "Arn"]}}},
    )
    assert cfn_lint_errors(dict(template.to_json())) == []
