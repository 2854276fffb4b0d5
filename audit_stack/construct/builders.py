"""One builder per resource of the pipeline, each with the secure defaults it shares.

Encryption (KMS with the customer key, else SSE-SQS / the AWS-managed SNS and DynamoDB keys),
TLS-only topic and queues, on-demand tables with point-in-time recovery and deletion protection
unless DESTROY. The audit table's keys and index are the data contract's.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from audit_stack.construct import compat
from audit_stack.lambda_code import contract

__all__ = ["audit_table", "pseudonym_secret", "queue", "table", "topic"]


def topic(scope: Construct, construct_id: str, *, encryption_key: kms.IKey | None) -> sns.Topic:
    """The TLS-only topic audit events are published to, encrypted at rest."""
    return sns.Topic(
        scope,
        construct_id,
        display_name="Audit events",
        # SSE needs a KMS key: the AWS-managed aws/sns key unless the user brings one.
        master_key=encryption_key
        or kms.Alias.from_alias_name(scope, "AwsManagedSnsKey", "alias/aws/sns"),
        enforce_ssl=True,
        signature_version="2",
    )


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
        compat.acknowledge(created, ("AwsSolutions-SQS3", no_dead_letter_queue_because))
    return created


def table(
    scope: Construct,
    construct_id: str,
    *,
    partition_key: dynamodb.Attribute,
    sort_key: dynamodb.Attribute,
    encryption_key: kms.IKey | None,
    removal_policy: RemovalPolicy,
    time_to_live_attribute: str | None = None,
    stream: dynamodb.StreamViewType | None = None,
) -> dynamodb.Table:
    """An on-demand table with point-in-time recovery, encrypted, deletion-protected unless
    ``removal_policy`` is DESTROY; DynamoDB's TTL on ``time_to_live_attribute`` and a stream
    of ``stream``'s view when given."""
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
        time_to_live_attribute=time_to_live_attribute,
        stream=stream,
    )


def audit_table(
    scope: Construct,
    construct_id: str,
    *,
    encryption_key: kms.IKey | None,
    removal_policy: RemovalPolicy,
    event_type_index_shards: int,
    time_to_live_attribute: str | None = None,
) -> dynamodb.Table:
    """The audit table, and its by-type index unless ``event_type_index_shards`` is 0; its
    records expire (DynamoDB TTL) on ``time_to_live_attribute`` when given. Its stream (new and
    old images) feeds the sealer: every write and every change or deletion of a record."""
    created = table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(
            name=contract.PARTITION_KEY, type=dynamodb.AttributeType.STRING
        ),
        sort_key=dynamodb.Attribute(name=contract.SORT_KEY, type=dynamodb.AttributeType.STRING),
        encryption_key=encryption_key,
        removal_policy=removal_policy,
        time_to_live_attribute=time_to_live_attribute,
        stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
    )
    if event_type_index_shards:
        created.add_global_secondary_index(
            index_name=contract.EVENT_TYPE_INDEX,
            # "<event_type>#<shard>": one type's writes spread over the shards.
            partition_key=dynamodb.Attribute(
                name=contract.EVENT_TYPE_SHARD_ATTRIBUTE, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=contract.SORT_KEY, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
    return created


def hmac_key(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    why_not_rotated: str,
    encryption_key: kms.IKey | None,
    removal_policy: RemovalPolicy,
) -> secretsmanager.Secret:
    """A generated HMAC-SHA-256 key in Secrets Manager, rotated by hand (``why_not_rotated``:
    cdk-nag's SMG4 acknowledgement). Who may read it is set by its resource policy
    (permissions.py)."""
    created = secretsmanager.Secret(
        scope,
        construct_id,
        description=description,
        # 64 of 62 characters: about 380 bits, more than HMAC-SHA-256's 256-bit key.
        generate_secret_string=secretsmanager.SecretStringGenerator(
            password_length=64, exclude_punctuation=True, include_space=False
        ),
        encryption_key=encryption_key,
        removal_policy=removal_policy,
    )
    compat.acknowledge(created, ("AwsSolutions-SMG4", why_not_rotated))
    return created


def writer_key(
    scope: Construct,
    construct_id: str,
    *,
    encryption_key: kms.IKey | None,
    removal_policy: RemovalPolicy,
) -> secretsmanager.Secret:
    """The key of the recorder's MAC on each item it writes (who may read it: the recorder and
    the sealer only, permissions.only_writers_read_the_writer_key)."""
    return hmac_key(
        scope,
        construct_id,
        description="Keys the recorder's HMAC-SHA-256 on each audit record it writes; the "
        "sealer seals only records that carry it. Only those two functions may read it.",
        why_not_rotated="Records are checked against the writer key when sealed, within the "
        "stream's batching window; a rotation between a write and its seal would report that "
        "record. Rotate deliberately, by hand, with the pipeline idle (docs/INTEGRITY.md).",
        encryption_key=encryption_key,
        removal_policy=removal_policy,
    )


def pseudonym_secret(
    scope: Construct,
    construct_id: str,
    *,
    encryption_key: kms.IKey | None,
    removal_policy: RemovalPolicy,
) -> secretsmanager.Secret:
    """The key of the subjects' HMAC-SHA-256 pseudonyms (who may read it: permissions.py)."""
    return hmac_key(
        scope,
        construct_id,
        description="Keys the HMAC-SHA-256 pseudonyms of audit subjects (e-mail "
        "addresses); grant it with AuditPipeline.grant_lookup",
        why_not_rotated="Rotating the pseudonym key gives every account a new pseudonym: "
        "lookups of older records then need the older versions (the audit CLI "
        "reads them all). Rotate deliberately, by hand (README).",
        encryption_key=encryption_key,
        removal_policy=removal_policy,
    )
