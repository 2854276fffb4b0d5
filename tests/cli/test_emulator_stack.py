"""The emulator answers CloudFormation's read API and holds the stack's alarms, as AWS does."""

from __future__ import annotations

import boto3
import botocore.exceptions
import pytest

from audit_stack.local import LocalAuditPipeline


def test_describe_stacks_returns_the_deployed_outputs(pipeline: LocalAuditPipeline) -> None:
    cloudformation = pipeline.client("cloudformation")

    (stack,) = cloudformation.describe_stacks(StackName="AuditPipelineStack")["Stacks"]
    (by_id,) = cloudformation.describe_stacks(StackName=stack["StackId"])["Stacks"]
    (listed,) = cloudformation.describe_stacks()["Stacks"]

    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["StackId"].startswith(
        f"arn:aws:cloudformation:{pipeline.region}:{pipeline.account_id}:stack/AuditPipelineStack/"
    )
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]} == pipeline.outputs
    assert stack["Description"] == pipeline.template["Description"]
    assert by_id["StackName"] == listed["StackName"] == "AuditPipelineStack"


def test_list_stack_resources_names_each_physical_resource(pipeline: LocalAuditPipeline) -> None:
    summaries = pipeline.client("cloudformation").list_stack_resources(
        StackName="AuditPipelineStack"
    )["StackResourceSummaries"]
    by_id = {summary["LogicalResourceId"]: summary for summary in summaries}
    skipped = {logical_id for logical_id, _, _ in pipeline.deployment.skipped}

    assert set(by_id) == set(pipeline.deployment.resources)
    for logical_id, physical in pipeline.deployment.resources.items():
        assert by_id[logical_id]["PhysicalResourceId"] == physical.ref
        reason = by_id[logical_id].get("ResourceStatusReason", "")
        assert reason.startswith("not created by the local emulator") == (logical_id in skipped)


def test_the_templates_alarms_exist_in_cloudwatch_as_new_alarms(
    pipeline: LocalAuditPipeline,
) -> None:
    template_alarms = {
        logical_id: resource["Properties"]
        for logical_id, resource in pipeline.template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    names = {
        logical_id: pipeline.deployment.resources[logical_id].ref for logical_id in template_alarms
    }

    alarms = pipeline.client("cloudwatch").describe_alarms(AlarmNames=list(names.values()))
    by_name = {alarm["AlarmName"]: alarm for alarm in alarms["MetricAlarms"]}

    assert set(by_name) == set(names.values()) and len(names) >= 4
    for logical_id, properties in template_alarms.items():
        alarm = by_name[names[logical_id]]
        assert alarm["StateValue"] == "INSUFFICIENT_DATA"
        assert alarm["StateReason"] == "Unchecked: Initial alarm creation"
        if "Metrics" in properties:  # metric math: the same expression and inputs
            assert [m["Id"] for m in alarm["Metrics"]] == [m["Id"] for m in properties["Metrics"]]
        else:
            assert alarm["MetricName"] == properties["MetricName"]
        assert alarm["Threshold"] == float(properties["Threshold"])
        assert alarm["TreatMissingData"] == properties["TreatMissingData"]
    assert all(
        logical_id not in {s[0] for s in pipeline.deployment.skipped} for logical_id in names
    )


def test_another_region_or_operation_is_answered_as_aws_would(
    pipeline: LocalAuditPipeline,
) -> None:
    elsewhere = boto3.client(
        "cloudformation",
        endpoint_url=pipeline.endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    with pytest.raises(botocore.exceptions.ClientError, match="Stack with id AuditPipelineStack"):
        elsewhere.describe_stacks(StackName="AuditPipelineStack")
    assert elsewhere.describe_stacks()["Stacks"] == []
    with pytest.raises(botocore.exceptions.ClientError, match="CreateStack is not emulated"):
        pipeline.client("cloudformation").create_stack(StackName="Other", TemplateBody="{}")
