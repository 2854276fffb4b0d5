"""Deploys DynamoDB tables (and a global table's replica in the stack's region) and S3 buckets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit_stack.local.deploy.context import DeployContext, template_bool
from audit_stack.local.deploy.template import DeploymentError, PhysicalResource, TemplateResource

_TABLE_NO_LOCAL_EFFECT: Mapping[str, str] = {
    "ContributorInsightsSpecification": "CloudWatch Contributor Insights is not emulated",
    "TimeToLiveSpecification": "TTL deletes nothing by itself; pipeline.expire_records(now=...)",
    "TableClass": "storage classes are not emulated",
    "ProvisionedThroughput": "throughput is not limited locally",
    "OnDemandThroughput": "throughput is not limited locally",
    "WarmThroughput": "throughput is not limited locally",
    "WriteProvisionedThroughputSettings": "throughput is not limited locally",
    "WriteOnDemandThroughputSettings": "throughput is not limited locally",
    "ResourcePolicy": "enforced by the emulator's IAM layer, not stored in DynamoDB",
    "SSESpecification": "encryption at rest is not emulated",
    "PointInTimeRecoverySpecification": "backups and restores are not emulated",
    "Tags": "tags have no effect on the data path",
}
_TABLE_KEYS: frozenset[str] = frozenset(
    {
        "TableName",
        "AttributeDefinitions",
        "KeySchema",
        "BillingMode",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "DeletionProtectionEnabled",
        "StreamSpecification",
    }
)


def deploy_table(ctx: DeployContext, resource: TemplateResource) -> PhysicalResource:
    properties = ctx.properties(
        resource, reproduced=_TABLE_KEYS, no_local_effect=_TABLE_NO_LOCAL_EFFECT
    )
    return _create_table(ctx, resource, properties)


def deploy_global_table(ctx: DeployContext, resource: TemplateResource) -> PhysicalResource:
    # A global table is deployed as its replica in the stack's region, the one the stack's
    # functions use; replicas elsewhere are not emulated.
    properties = ctx.properties(
        resource,
        reproduced={*_TABLE_KEYS, "Replicas"} - {"DeletionProtectionEnabled"},
        no_local_effect=_TABLE_NO_LOCAL_EFFECT,
    )
    replicas = properties.pop("Replicas")
    local = [replica for replica in replicas if replica["Region"] == ctx.resolver.region]
    if not local:
        raise DeploymentError(
            f"AWS::DynamoDB::GlobalTable {resource.logical_id} has no replica in the stack's "
            f"region {ctx.resolver.region}"
        )
    if local[0].get("DeletionProtectionEnabled") is not None:
        properties["DeletionProtectionEnabled"] = local[0]["DeletionProtectionEnabled"]
    for replica in replicas:
        if replica is not local[0]:
            ctx.deployment.not_reproduced.append(
                (
                    resource.logical_id,
                    "Replicas",
                    f"replica in {replica['Region']} not emulated",
                )
            )
    return _create_table(ctx, resource, properties)


def _create_table(
    ctx: DeployContext, resource: TemplateResource, properties: dict[str, Any]
) -> PhysicalResource:
    name = ctx.name(resource, properties.get("TableName"), max_length=255)
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    provisioned = request["BillingMode"] == "PROVISIONED"
    if provisioned:
        # Required by the API for provisioned tables; its numbers have no local effect.
        request["ProvisionedThroughput"] = ctx.resolver.resolve(
            resource.properties.get(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        )
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if properties.get(key):
            request[key] = [
                {
                    name: value
                    for name, value in index.items()
                    if name in {"IndexName", "KeySchema", "Projection"}
                    or (provisioned and name == "ProvisionedThroughput")
                }
                for index in properties[key]
            ]
    stream = properties.get("StreamSpecification")
    if stream:
        # moto keeps the records in-process; an event source mapping reads them (esm/stream.py).
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream["StreamViewType"],
        }
    if "DeletionProtectionEnabled" in properties:
        request["DeletionProtectionEnabled"] = template_bool(
            properties["DeletionProtectionEnabled"]
        )
    description = ctx.client("dynamodb").create_table(**request)["TableDescription"]
    if description.get("LatestStreamArn"):
        ctx.deployment.table_streams[description["LatestStreamArn"]] = name
    return PhysicalResource(
        name,
        {"Arn": description["TableArn"], "StreamArn": description.get("LatestStreamArn", "")},
    )
