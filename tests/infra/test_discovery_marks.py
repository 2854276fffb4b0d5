"""The marks that let tools find AuditPipeline's resources in any stack, on the app's template."""

from __future__ import annotations

import copy
from typing import Any

from audit_stack.discovery import METADATA_KEY, find_pipelines


def test_every_resource_of_the_pipeline_carries_its_mark(template_json: dict[str, Any]) -> None:
    resources = template_json["Resources"]
    unmarked = [
        logical_id
        for logical_id, resource in resources.items()
        if "AuditPipeline" not in resource.get("Metadata", {})
        and resource["Metadata"]["aws:cdk:path"].startswith("AuditPipelineStack/Audit/")
    ]
    assert unmarked == []
    # AuditStack's own alarm topic is the stack's, not the pipeline's.
    stacks_own = {
        resource["Metadata"]["aws:cdk:path"].split("/")[1]
        for resource in resources.values()
        if "AuditPipeline" not in resource.get("Metadata", {})
        and resource["Type"] != "AWS::CDK::Metadata"
    }
    assert stacks_own == {"AlarmTopicKey", "AlarmTopic"}


def test_the_apps_pipeline_is_found_with_each_role(template_json: dict[str, Any]) -> None:
    (pipeline,) = find_pipelines(template_json)
    assert pipeline.path == "Audit"
    types = {
        role: template_json["Resources"][pipeline.logical_id(role)]["Type"]
        for role in pipeline.roles
    }
    assert types == {
        "topic": "AWS::SNS::Topic",
        "queue": "AWS::SQS::Queue",
        "dead-letter-queue": "AWS::SQS::Queue",
        "subscription-dead-letter-queue": "AWS::SQS::Queue",
        "table": "AWS::DynamoDB::Table",
        "publisher": "AWS::Lambda::Function",
        "recorder": "AWS::Lambda::Function",
        "sealer": "AWS::Lambda::Function",
        "digest-table": "AWS::DynamoDB::Table",
        "signing-key": "AWS::KMS::Key",
        "anchor-bucket": "AWS::S3::Bucket",
        "pseudonym-secret": "AWS::SecretsManager::Secret",
    }
    assert pipeline.function_roles == ("publisher", "recorder", "sealer")
    alarms = [
        k for k, r in template_json["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    assert sorted(pipeline.alarms) == sorted(alarms) and len(alarms) == 14
    dead_letter = template_json["Resources"][pipeline.logical_id("queue")]["Properties"]
    assert dead_letter["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] == (
        pipeline.logical_id("dead-letter-queue")
    )


def test_a_template_without_marks_is_read_from_its_cdk_paths_alike(
    template_json: dict[str, Any],
) -> None:
    # A stack deployed by a version of the construct that added no marks.
    unmarked = copy.deepcopy(template_json)
    for resource in unmarked["Resources"].values():
        resource.get("Metadata", {}).pop(METADATA_KEY, None)
    assert all(METADATA_KEY not in r.get("Metadata", {}) for r in unmarked["Resources"].values())
    assert find_pipelines(unmarked) == find_pipelines(template_json)
