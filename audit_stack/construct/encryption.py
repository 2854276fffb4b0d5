"""Customer-managed keys that deploy: the queue's subscription without a key-policy cycle, and
key-policy statements that an imported key must already hold, listed in a synth-time warning.

With ``@aws-cdk/aws-sns-subscriptions:restrictSqsDescryption`` (set by ``cdk init``),
``SqsSubscription`` lets SNS use the queue's key only for this topic's ARN: the key policy refers
to the topic, whose encryption refers to the key. That is a circular dependency (cfn-lint E3004),
or a cross-stack cycle when the key lives in another stack. Here SNS may use the key for the
topics of this account and region only (``aws:SourceAccount`` and ``aws:SourceArn``), which
refers to no resource of the pipeline; the queue policy still names the topic.
"""

from __future__ import annotations

import json
from typing import Any

import jsii
from aws_cdk import Annotations, Names, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

__all__ = [
    "PUBLISHER_KEY_ACTIONS",
    "SNS_DELIVERY_KEY_ACTIONS",
    "SNS_PRINCIPAL",
    "QueueSubscription",
    "cloudwatch_alarms_statement",
    "require_key_statement",
    "sns_delivery_statement",
]

SNS_PRINCIPAL = "sns.amazonaws.com"
# What SNS needs of the queue's key to deliver to it, and a publisher of the topic's key.
SNS_DELIVERY_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
PUBLISHER_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


@jsii.implements(sns.ITopicSubscription)
class QueueSubscription:
    """``SqsSubscription`` minus its key-policy statement (see the module docstring); same
    construct ids, so the subscription and the queue policy keep their logical ids."""

    def __init__(
        self,
        queue: sqs.Queue,
        *,
        filter_policy: dict[str, sns.SubscriptionFilter],
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> None:
        self._queue = queue
        self._filter_policy = filter_policy
        self._dead_letter_queue = dead_letter_queue

    def bind(self, topic: sns.ITopic) -> sns.TopicSubscriptionConfig:
        added = self._queue.add_to_resource_policy(
            iam.PolicyStatement(
                resources=[self._queue.queue_arn],
                actions=["sqs:SendMessage"],
                principals=[iam.ServicePrincipal(SNS_PRINCIPAL)],
                conditions={"ArnEquals": {"aws:SourceArn": topic.topic_arn}},
            )
        )
        return sns.TopicSubscriptionConfig(
            subscriber_scope=self._queue,
            subscriber_id=Names.node_unique_id(topic.node),
            endpoint=self._queue.queue_arn,
            protocol=sns.SubscriptionProtocol.SQS,
            # The SNS envelope is kept: its MessageId is recorded as provenance.
            raw_message_delivery=False,
            filter_policy=self._filter_policy,
            # Where SNS puts messages it could not deliver (the subscription's RedrivePolicy).
            dead_letter_queue=self._dead_letter_queue,
            subscription_dependency=added.policy_dependable,
        )


def sns_delivery_statement(scope: Construct) -> iam.PolicyStatement:
    """Lets SNS encrypt messages to the queues with the key, for this account's topics."""
    stack = Stack.of(scope)
    return iam.PolicyStatement(
        sid="AllowSnsDeliveryToAuditQueues",
        principals=[iam.ServicePrincipal(SNS_PRINCIPAL)],
        actions=list(SNS_DELIVERY_KEY_ACTIONS),
        resources=["*"],
        conditions={
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": stack.format_arn(service="sns", resource="*")},
        },
    )


def cloudwatch_alarms_statement(scope: Construct) -> iam.PolicyStatement:
    """Lets CloudWatch publish this account's alarms to a topic encrypted with the key (an alarm
    action's topic)."""
    stack = Stack.of(scope)
    return iam.PolicyStatement(
        sid="AllowCloudWatchAlarmsToEncryptedTopic",
        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions=list(SNS_DELIVERY_KEY_ACTIONS),
        resources=["*"],
        conditions={
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": stack.format_arn(service="cloudwatch", resource="alarm:*")
            },
        },
    )


def require_key_statement(
    scope: Construct, key: kms.IKey, statement: iam.PolicyStatement, *, purpose: str
) -> None:
    """Add ``statement`` to the key's policy; for an imported key, whose policy the app cannot
    change, warn at synthesis with the statement to add by hand and why (``purpose``)."""
    if key.add_to_resource_policy(statement).statement_added:
        return
    document = _readable(Stack.of(scope).resolve(statement.to_statement_json()))
    Annotations.of(scope).add_warning_v2(
        f"audit-pipeline:imported-key-policy:{statement.sid or purpose}",
        f"encryption_key {key.node.path} is imported, so this app cannot change its key policy, "
        f"and {purpose}. Add this statement to the key policy before deploying: "
        + json.dumps(document, sort_keys=True),
    )


def _readable(value: Any) -> Any:
    """A resolved statement with ``${AWS::AccountId}``-style text instead of Ref/Fn::Join."""
    if isinstance(value, list):
        return [_readable(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"Ref"} and isinstance(value["Ref"], str):
            return "${" + value["Ref"] + "}"
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(str(_readable(part)) for part in parts)
        return {key: _readable(item) for key, item in value.items()}
    if isinstance(value, str) and Token.is_unresolved(value):
        return "<resolved at deploy time>"
    return value
