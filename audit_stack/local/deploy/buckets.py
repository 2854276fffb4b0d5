"""Deploys S3 buckets into moto's S3: the one handler for every bucket of a stack, the user's
own and the pipeline's (Object Lock, versioning and the default retention are reproduced)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit_stack.local.deploy.context import DeployContext, template_bool
from audit_stack.local.deploy.template import PhysicalResource, TemplateResource

BUCKET_NAME_MAX_LENGTH = 63
_BUCKET_KEYS: frozenset[str] = frozenset(
    {"BucketName", "ObjectLockEnabled", "ObjectLockConfiguration", "VersioningConfiguration"}
)
_BUCKET_NO_LOCAL_EFFECT: Mapping[str, str] = {
    "BucketEncryption": "encryption at rest is not emulated",
    "PublicAccessBlockConfiguration": "nothing is public locally: the emulator listens on loopback",
    "OwnershipControls": "object ownership is not enforced by the emulator",
    "AccessControl": "ACLs are not enforced by the emulator",
    "LifecycleConfiguration": "objects are not expired or transitioned locally",
    "IntelligentTieringConfigurations": "storage classes are not emulated",
    "InventoryConfigurations": "inventory reports are not emulated",
    "AnalyticsConfigurations": "storage class analysis is not emulated",
    "MetricsConfigurations": "metrics are not emulated",
    "LoggingConfiguration": "server access logs are not written locally",
    "CorsConfiguration": "CORS is not enforced by the emulator",
    "WebsiteConfiguration": "static website hosting is not emulated",
    "AccelerateConfiguration": "transfer acceleration is not emulated",
    "ReplicationConfiguration": "replication is not emulated",
    "Tags": "tags have no effect on the data path",
}


def deploy_bucket(ctx: DeployContext, resource: TemplateResource) -> PhysicalResource:
    """A bucket as CloudFormation creates it; bucket notifications are refused (nothing would
    deliver them), which skips a user's bucket and refuses one on the data path."""
    properties = ctx.properties(
        resource, reproduced=_BUCKET_KEYS, no_local_effect=_BUCKET_NO_LOCAL_EFFECT
    )
    # CloudFormation's generated bucket names are lower case, as S3 requires.
    name = ctx.name(
        resource, properties.get("BucketName"), max_length=BUCKET_NAME_MAX_LENGTH
    ).lower()
    region = ctx.resolver.region
    request: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    object_lock = template_bool(properties.get("ObjectLockEnabled", False))
    if object_lock:
        request["ObjectLockEnabledForBucket"] = True
    s3 = ctx.client("s3")
    s3.create_bucket(**request)
    versioning = properties.get("VersioningConfiguration", {}).get("Status")
    if versioning and not object_lock:  # Object Lock turns versioning on by itself
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
    lock_configuration = properties.get("ObjectLockConfiguration")
    if object_lock and lock_configuration:
        s3.put_object_lock_configuration(
            Bucket=name, ObjectLockConfiguration=_lock_configuration(lock_configuration)
        )
    domain = f"{name}.s3.amazonaws.com"
    regional_domain = f"{name}.s3.{region}.amazonaws.com"
    return PhysicalResource(
        name,
        {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": domain,
            "RegionalDomainName": regional_domain,
            "DualStackDomainName": f"{name}.s3.dualstack.{region}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{region}.amazonaws.com",
        },
    )


def _lock_configuration(template: Mapping[str, Any]) -> dict[str, Any]:
    """PutObjectLockConfiguration's shape from the template's (numbers as integers)."""
    configuration: dict[str, Any] = {
        "ObjectLockEnabled": str(template.get("ObjectLockEnabled", "Enabled"))
    }
    retention = template.get("Rule", {}).get("DefaultRetention")
    if retention:
        rule: dict[str, Any] = {"Mode": str(retention["Mode"])}
        for unit in ("Days", "Years"):
            if unit in retention:
                rule[unit] = int(retention[unit])
        configuration["Rule"] = {"DefaultRetention": rule}
    return configuration
