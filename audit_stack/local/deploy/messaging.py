"""Deploys SNS topics, SQS queues and the subscriptions between them."""

from __future__ import annotations

import json

from audit_stack.local.deploy.context import DeployContext, attribute_text
from audit_stack.local.deploy.model import QueueInfo
from audit_stack.local.deploy.template import DeploymentError, PhysicalResource, TemplateResource

_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)
_TOPIC_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DisplayName",
    "FifoTopic",
    "KmsMasterKeyId",
    "SignatureVersion",
    "TracingConfig",
)


def deploy_topic(ctx: DeployContext, resource: TemplateResource) -> PhysicalResource:
    properties = ctx.properties(
        resource,
        reproduced={*_TOPIC_ATTRIBUTES, "TopicName", "Tags", "Subscription"},
        no_local_effect={
            "DeliveryStatusLogging": "delivery status logs are not emulated",
            "FifoThroughputScope": "throughput is not limited locally",
        },
    )
    fifo = str(properties.get("FifoTopic", "false")).lower() == "true"
    name = ctx.name(resource, properties.get("TopicName"), max_length=256 - (5 if fifo else 0))
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {
        key: attribute_text(properties[key]) for key in _TOPIC_ATTRIBUTES if key in properties
    }
    arn = ctx.client("sns").create_topic(
        Name=name, Attributes=attributes, Tags=properties.get("Tags", [])
    )["TopicArn"]
    for subscription in properties.get("Subscription", []):
        _subscribe(ctx, resource, arn, subscription["Protocol"], subscription["Endpoint"], {})
    return PhysicalResource(arn, {"TopicArn": arn, "TopicName": name})


def deploy_queue(ctx: DeployContext, resource: TemplateResource) -> PhysicalResource:
    properties = ctx.properties(resource, reproduced={*_QUEUE_ATTRIBUTES, "QueueName", "Tags"})
    fifo = str(properties.get("FifoQueue", "false")).lower() == "true"
    name = ctx.name(resource, properties.get("QueueName"), max_length=80 - (5 if fifo else 0))
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {
        key: attribute_text(properties[key]) for key in _QUEUE_ATTRIBUTES if key in properties
    }
    tags = {tag["Key"]: tag["Value"] for tag in properties.get("Tags", [])}
    url = ctx.client("sqs").create_queue(QueueName=name, Attributes=attributes, tags=tags)[
        "QueueUrl"
    ]
    arn = ctx.arn("sqs", name)
    redrive = properties.get("RedrivePolicy")
    if isinstance(redrive, str):
        redrive = json.loads(redrive)
    ctx.deployment.queues.append(
        QueueInfo(
            logical_id=resource.logical_id,
            name=name,
            url=url,
            arn=arn,
            dead_letter_target_arn=redrive["deadLetterTargetArn"] if redrive else None,
            max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
            visibility_timeout_seconds=int(properties.get("VisibilityTimeout", 30)),
            fifo=fifo,
        )
    )
    return PhysicalResource(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def deploy_subscription(ctx: DeployContext, resource: TemplateResource) -> PhysicalResource:
    properties = ctx.properties(
        resource,
        reproduced={
            "Protocol",
            "Endpoint",
            "TopicArn",
            "FilterPolicy",
            "FilterPolicyScope",
            "RawMessageDelivery",
            "RedrivePolicy",
            "Region",
        },
        no_local_effect={
            "DeliveryPolicy": "delivery to a local queue is never retried (it fails at once)",
        },
    )
    region = properties.get("Region", ctx.resolver.region)
    if region != ctx.resolver.region:
        raise DeploymentError(
            f"AWS::SNS::Subscription {resource.logical_id}: Region {region} differs from the "
            "stack's; cross-region subscriptions are not emulated"
        )
    attributes: dict[str, str] = {
        key: attribute_text(properties[key])
        # RedrivePolicy: where a delivery the queue's policy or key denies goes (sns_delivery).
        for key in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")
        if key in properties
    }
    arn = _subscribe(
        ctx,
        resource,
        properties["TopicArn"],
        properties["Protocol"],
        properties["Endpoint"],
        attributes,
    )
    return PhysicalResource(arn, {"Arn": arn})


def _subscribe(
    ctx: DeployContext,
    resource: TemplateResource,
    topic_arn: str,
    protocol: str,
    endpoint: str,
    attributes: dict[str, str],
) -> str:
    if protocol != "sqs" or ctx.deployment.queue_by_arn(endpoint) is None:
        raise DeploymentError(
            f"{resource.type} {resource.logical_id}: Protocol {protocol} to {endpoint} is not "
            "emulated; only subscriptions of this stack's SQS queues are"
        )
    arn: str = ctx.client("sns").subscribe(
        TopicArn=topic_arn,
        Protocol=protocol,
        Endpoint=endpoint,
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return arn
