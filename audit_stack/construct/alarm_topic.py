"""An SNS topic that CloudWatch alarms can reach, encrypted with the pipeline's key.

CloudWatch cannot publish to a topic encrypted with the AWS-managed ``aws/sns`` key, so an
alarm topic needs a customer-managed key whose policy lets ``cloudwatch.amazonaws.com`` use it:
the pipeline's ``encryption_key`` when it has one (an imported key gets a synth-time warning with
the statement to add, as for the pipeline's own statements), else a key of its own.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from audit_stack.construct.encryption import cloudwatch_alarms_statement, require_key_statement

__all__ = ["encrypted_alarm_topic"]


def encrypted_alarm_topic(
    scope: Construct, construct_id: str, *, encryption_key: kms.IKey | None = None
) -> sns.Topic:
    """A TLS-only topic for ``alarm_action=SnsAction(topic)``, encrypted with
    ``encryption_key`` (the key you give ``AuditPipeline``) or, without one, a new rotating key;
    CloudWatch of this account may publish to it and use the key for it."""
    key = encryption_key or kms.Key(
        scope,
        f"{construct_id}Key",
        description="Encrypts the audit pipeline's alarm topic",
        enable_key_rotation=True,
    )
    require_key_statement(
        scope,
        key,
        cloudwatch_alarms_statement(scope),
        purpose="CloudWatch cannot send alarms to the topic encrypted with it otherwise",
    )
    topic = sns.Topic(
        scope,
        construct_id,
        display_name="Audit pipeline alarms",
        master_key=key,
        enforce_ssl=True,
    )
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={"StringEquals": {"aws:SourceAccount": Stack.of(scope).account}},
        )
    )
    return topic
