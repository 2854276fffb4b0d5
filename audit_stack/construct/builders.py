"""The secure defaults every queue and table of the pipeline shares, in one builder each.

Encryption (KMS with the customer key, else SSE-SQS / the AWS-managed DynamoDB key), TLS-only
queues, on-demand tables with point-in-time recovery and deletion protection unless DESTROY.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

__all__ = ["queue", "table"]


def queue(
    scope: Construct,
    construct_id: str,
    *,
    retention_period: Duration,
    encryption_key: kms.IKey | None,
    removal_policy: RemovalPolicy,
    no_dead_letter_queue_because: str | None = None,
    **props: Any,
) -> sqs.Queue:
    """An encrypted, TLS-only queue; ``no_dead_letter_queue_because`` acknowledges cdk-nag's
    SQS3 with that reason, for a queue that is (or needs no) dead-letter queue."""
    created = sqs.Queue(
        scope,
        construct_id,
        retention_period=retention_period,
        encryption=sqs.QueueEncryption.KMS if encryption_key else sqs.QueueEncryption.SQS_MANAGED,
        encryption_master_key=encryption_key,
        enforce_ssl=True,
        removal_policy=removal_policy,
        **props,
    )
    if no_dead_letter_queue_because is not None:
        Validations.of(created).acknowledge(
            Acknowledgment(id="AwsSolutions-SQS3", reason=no_dead_letter_queue_because)
        )
    return created


def table(
    scope: Construct,
    construct_id: str,
    *,
    partition_key: dynamodb.Attribute,
    sort_key: dynamodb.Attribute,
    encryption_key: kms.IKey | None,
    removal_policy: RemovalPolicy,
) -> dynamodb.Table:
    """An on-demand table with point-in-time recovery, encrypted, deletion-protected unless
    ``removal_policy`` is DESTROY."""
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=partition_key,
        sort_key=sort_key,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        deletion_protection=removal_policy != RemovalPolicy.DESTROY,
        encryption=(
            dynamodb.TableEncryption.CUSTOMER_MANAGED
            if encryption_key
            else dynamodb.TableEncryption.AWS_MANAGED
        ),
        encryption_key=encryption_key,
        removal_policy=removal_policy,
    )
