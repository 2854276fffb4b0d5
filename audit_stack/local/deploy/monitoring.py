"""Deploys what operators read but the data path ignores: alarms and signing keys."""

from __future__ import annotations

from audit_stack.local.deploy.context import DeployContext, skip_reason
from audit_stack.local.deploy.template import PhysicalResource, TemplateResource


def deploy_key(ctx: DeployContext, resource: TemplateResource) -> PhysicalResource:
    """Signing keys are created in moto's KMS (digests are signed locally); others skipped."""
    if resource.properties.get("KeyUsage") != "SIGN_VERIFY":
        reason = skip_reason(resource.type) or ""
        ctx.deployment.skipped.append((resource.logical_id, resource.type, reason))
        return ctx.placeholder(resource)
    properties = ctx.properties(
        resource,
        reproduced={"KeySpec", "KeyUsage", "Description"},
        no_local_effect={
            "KeyPolicy": "enforced by the emulator's IAM layer, not stored in KMS",
            "Tags": "tags have no effect on the data path",
            "EnableKeyRotation": "asymmetric keys do not rotate",
            "PendingWindowInDays": "keys are never deleted locally",
        },
    )
    metadata = ctx.client("kms").create_key(
        KeySpec=properties["KeySpec"],
        KeyUsage="SIGN_VERIFY",
        Description=str(properties.get("Description", resource.logical_id)),
    )["KeyMetadata"]
    return PhysicalResource(metadata["KeyId"], {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]})


_ALARM_KEYS: frozenset[str] = frozenset(
    {
        "ActionsEnabled",
        "AlarmActions",
        "AlarmDescription",
        "AlarmName",
        "ComparisonOperator",
        "DatapointsToAlarm",
        "Dimensions",
        "EvaluateLowSampleCountPercentile",
        "EvaluationPeriods",
        "ExtendedStatistic",
        "InsufficientDataActions",
        "MetricName",
        "Metrics",
        "Namespace",
        "OKActions",
        "Period",
        "Statistic",
        "Tags",
        "Threshold",
        "ThresholdMetricId",
        "TreatMissingData",
        "Unit",
    }
)


def deploy_alarm(ctx: DeployContext, resource: TemplateResource) -> PhysicalResource:
    # The properties are PutMetricAlarm's parameters; CloudFormation also accepts numbers and
    # booleans as strings.
    request = ctx.properties(resource, reproduced=_ALARM_KEYS)
    for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if key in request:
            request[key] = int(request[key])
    if "Threshold" in request:
        request["Threshold"] = float(request["Threshold"])
    if "ActionsEnabled" in request:
        request["ActionsEnabled"] = str(request["ActionsEnabled"]).lower() == "true"
    name = ctx.name(resource, request.pop("AlarmName", None), max_length=255)
    cloudwatch = ctx.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName=name, **request)
    # AWS's state for a new alarm (moto starts at OK). Nothing publishes metrics locally, so
    # the alarm is never evaluated and keeps this state.
    cloudwatch.set_alarm_state(
        AlarmName=name,
        StateValue="INSUFFICIENT_DATA",
        StateReason="Unchecked: Initial alarm creation",
    )
    ctx.deployment.not_reproduced.append(
        (resource.logical_id, "Threshold", "never evaluated: no metrics are published locally")
    )
    return PhysicalResource(name, {"Arn": ctx.arn("cloudwatch", f"alarm:{name}")})
