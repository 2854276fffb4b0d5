"""The digest chain's resources: signing key, digest table, the sealer (fed by the audit table's
DynamoDB stream, plus a heartbeat schedule), and the S3 bucket (Object Lock) where every digest's
body and signed checkpoint are written once.

``AuditPipeline`` composes this construct; docs/INTEGRITY.md explains the design and its limits.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from constructs import Construct

from audit_stack.construct import builders, compat
from audit_stack.construct.functions import SEALER_HANDLER, FunctionFactory
from audit_stack.construct.permissions import (
    FUNCTION_KEY_ACTIONS,
    SEALER_DIGEST_TABLE_ACTIONS,
    SIGN_ACTIONS,
    VERIFY_KEY_ACTIONS,
    VERIFY_TABLE_ACTIONS,
    append_only_statements,
)
from audit_stack.lambda_code import contract

__all__ = [
    "ANCHOR_READ_ACTIONS",
    "ANCHOR_WRITE_ACTIONS",
    "HEARTBEAT",
    "MAX_STREAM_BATCH",
    "SEALER_TIMEOUT",
    "DigestChain",
]

SEALER_TIMEOUT = Duration.seconds(60)
HEARTBEAT = Duration.hours(1)
# Records per sealer invocation from the stream: DynamoDB streams' maximum. Lambda's 6 MB
# payload limit ends a batch sooner (about 6,000 records of 1 KB); one digest and one KMS Sign
# cover the whole batch.
MAX_STREAM_BATCH = 10_000
# The event source's batching window is at most 5 minutes (Lambda's limit).
MAX_BATCHING_WINDOW = Duration.minutes(5)
# The sealer writes new objects (with their retention) below its prefix and reads back the
# chain head's body; nothing else.
ANCHOR_WRITE_ACTIONS = ("s3:PutObject", "s3:PutObjectRetention")
SEALER_BODY_READ_ACTIONS = ("s3:GetObject",)
# What `audit verify` reads: every version of every checkpoint (an overwrite adds a version).
ANCHOR_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
ANCHOR_LIST_ACTIONS = ("s3:ListBucket", "s3:ListBucketVersions")


class DigestChain(Construct):
    """Seals recorded audit events into signed, chained digests at an interval."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.Table,
        make_function: FunctionFactory,
        interval: Duration,
        encryption_key: kms.IKey | None,
        removal_policy: RemovalPolicy,
        anchor_bucket: s3.IBucket | None,
        anchor_retention: Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        self._table = table
        self.anchor_bucket = anchor_bucket or self._anchor_bucket(anchor_retention)

        self.signing_key = kms.Key(
            self,
            "SigningKey",
            description="Signs the audit log's digests (only the sealer may Sign)",
            key_spec=kms.KeySpec.ECC_NIST_P256,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=RemovalPolicy.RETAIN,
        )
        compat.acknowledge(
            self.signing_key,
            (
                "AwsSolutions-KMS5",
                "Asymmetric KMS keys cannot rotate; verifiers keep old public keys.",
            ),
        )

        self.digest_table = builders.table(
            self,
            "DigestTable",
            partition_key=dynamodb.Attribute(
                name=contract.DIGEST_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(
                name=contract.DIGEST_SORT_KEY, type=dynamodb.AttributeType.NUMBER
            ),
            encryption_key=encryption_key,
            removal_policy=removal_policy,
        )

        self.sealer = make_function(
            "SealerFunction",
            description="Signs the audit table's new records (its stream) into the digest chain",
            handler=SEALER_HANDLER,
            timeout=SEALER_TIMEOUT,
            environment={
                contract.ENV_TABLE_NAME: table.table_name,
                contract.ENV_DIGEST_TABLE_NAME: self.digest_table.table_name,
                contract.ENV_SIGNING_KEY_ARN: self.signing_key.key_arn,
                contract.ENV_HEARTBEAT_SECONDS: str(int(HEARTBEAT.to_seconds())),
                contract.ENV_SEAL_INTERVAL_SECONDS: str(int(interval.to_seconds())),
                contract.ENV_ANCHOR_BUCKET: self.anchor_bucket.bucket_name,
                contract.ENV_ANCHOR_RETENTION_DAYS: str(int(anchor_retention.to_days())),
            },
        )
        sealer_role = _role(self.sealer)

        # Every write of the table, in order, with its new and old images: the sealer seals
        # each new record as written and reports every change or deletion (docs/INTEGRITY.md).
        # Retried until it succeeds (no retry limit, no bisecting): a record is never skipped,
        # and SealingStalled alarms on the stream's iterator age long before DynamoDB trims a
        # record after 24 hours.
        self.stream_source = event_sources.DynamoEventSource(
            table,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=MAX_STREAM_BATCH,
            max_batching_window=(
                interval
                if interval.to_seconds() <= MAX_BATCHING_WINDOW.to_seconds()
                else MAX_BATCHING_WINDOW
            ),
        )
        self.sealer.add_event_source(self.stream_source)
        iam.Grant.add_to_principal(
            grantee=self.sealer,
            actions=list(SEALER_DIGEST_TABLE_ACTIONS),
            resource_arns=[self.digest_table.table_arn],
        )
        for statement in append_only_statements(sealer_role):
            compat.add_to_table_resource_policy(self.digest_table, statement)
        # New checkpoint objects below this table's prefix only: no delete, no governance bypass,
        # no bucket settings. (A bucket in another account also needs the policy in
        # docs/INTEGRITY.md.)
        checkpoints = self.anchor_bucket.arn_for_objects(self.checkpoint_prefix(table))
        iam.Grant.add_to_principal(
            grantee=self.sealer,
            actions=[*ANCHOR_WRITE_ACTIONS, *SEALER_BODY_READ_ACTIONS],
            resource_arns=[checkpoints],
        )
        self._acknowledge_checkpoint_prefix(
            sealer_role,
            "New objects named by sequence number below this table's checkpoint prefix "
            "(checkpoints and digest bodies), and reading back the chain head's body; Object "
            "Lock makes each write-once.",
        )
        if encryption_key is not None:
            encryption_key.grant(self.sealer, *FUNCTION_KEY_ACTIONS)

        self.signing_key.grant(self.sealer, *SIGN_ACTIONS)
        # The key policy gives the account's administrators kms:*; Sign stays the sealer's.
        self.signing_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheSealerSigns",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(SIGN_ACTIONS),
                resources=["*"],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": sealer_role.role_arn}},
            )
        )

        self.schedule = events.Rule(
            self,
            "Schedule",
            description="The digest chain's heartbeat: a digest when none was written for an hour",
            schedule=events.Schedule.rate(interval),
            targets=[
                targets.LambdaFunction(
                    self.sealer,
                    event=events.RuleTargetInput.from_object({"trigger": "schedule"}),
                    retry_attempts=0,  # the next run writes the heartbeat
                )
            ],
        )

    def grant_verify(self, grantee: iam.IGrantable, table: dynamodb.ITable) -> iam.Grant:
        """Read what ``audit verify`` checks: the records, the digests, the public key and the
        anchored checkpoints."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(VERIFY_TABLE_ACTIONS),
            resource_arns=[table.table_arn, self.digest_table.table_arn],
        )
        self.signing_key.grant(grantee, *VERIFY_KEY_ACTIONS)
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(ANCHOR_LIST_ACTIONS),
            resource_arns=[self.anchor_bucket.bucket_arn],
        )
        checkpoints = self.anchor_bucket.arn_for_objects(self.checkpoint_prefix(table))
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(ANCHOR_READ_ACTIONS),
            resource_arns=[checkpoints],
        )
        self._acknowledge_checkpoint_prefix(
            grantee,
            "Reads every checkpoint and digest body of this table (objects named by sequence "
            "number) to check the chain against them.",
        )
        # `audit verify` reads the anchor bucket's name and the heartbeat from the sealer.
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["lambda:GetFunctionConfiguration"],
            resource_arns=[self.sealer.function_arn],
        )
        return grant

    def _acknowledge_checkpoint_prefix(self, grantee: object, reason: str) -> None:
        """cdk-nag's IAM5 finding for the checkpoint prefix's ``/*``, on a grantee it can see."""
        if not isinstance(grantee, Construct):
            return
        resource = Stack.of(self).resolve(
            self.anchor_bucket.arn_for_objects(self.checkpoint_prefix(self._table))
        )
        compat.acknowledge(grantee, (f"AwsSolutions-IAM5[Resource::{_nag_text(resource)}]", reason))

    @staticmethod
    def checkpoint_prefix(table: dynamodb.ITable) -> str:
        """The anchor bucket's keys of one table's checkpoints (``integrity.anchor_key``)."""
        return f"{contract.ANCHOR_PREFIX}{table.table_name}/*"

    def _anchor_bucket(self, retention: Duration) -> s3.Bucket:
        """A bucket only for checkpoints: Object Lock on (so versioned), SSE-S3, no public
        access, TLS only, kept on ``cdk destroy`` (a locked object outlives any stack)."""
        bucket = s3.Bucket(
            self,
            "AnchorBucket",
            object_lock_enabled=True,
            # Also the default; the sealer nonetheless locks each object explicitly.
            object_lock_default_retention=s3.ObjectLockRetention.compliance(retention),
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        compat.acknowledge(
            bucket,
            (
                "AwsSolutions-S1",
                "Only the sealer writes, once per object (Object Lock COMPLIANCE); "
                "CloudTrail records the control-plane calls; access logs would add a second "
                "bucket without adding evidence.",
            ),
        )
        return bucket


def _nag_text(value: Any) -> str:
    """A resolved value as cdk-nag names it in a finding: ``<Id.Arn>``, ``<Id>``, text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_nag_text(part) for part in parts)
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    return str(value)


def _role(function: lambda_.Function) -> iam.IRole:
    role = function.role
    if role is None:  # every function of the pipeline has its own explicit role
        raise ValueError(f"{function.node.path} has no execution role")
    return role
