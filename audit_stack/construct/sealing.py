"""The digest chain's resources: signing key, seal queue, digest table, sealer and its schedule.

``AuditPipeline`` composes this construct; docs/INTEGRITY.md explains the design and its limits.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from audit_stack.construct import builders, compat
from audit_stack.construct.functions import SEALER_HANDLER, FunctionFactory
from audit_stack.construct.permissions import (
    FUNCTION_KEY_ACTIONS,
    SEAL_NOTICE_SEND_ACTIONS,
    SEALER_DIGEST_TABLE_ACTIONS,
    SEALER_RECORD_READ_ACTIONS,
    SEALER_SEAL_QUEUE_ACTIONS,
    SIGN_ACTIONS,
    VERIFY_KEY_ACTIONS,
    VERIFY_TABLE_ACTIONS,
    append_only_statements,
)
from audit_stack.lambda_code import contract

__all__ = ["HEARTBEAT", "SEALER_TIMEOUT", "DigestChain"]

SEALER_TIMEOUT = Duration.seconds(60)
HEARTBEAT = Duration.hours(1)


class DigestChain(Construct):
    """Seals recorded audit events into signed, chained digests at an interval."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.Table,
        recorder: lambda_.Function,
        make_function: FunctionFactory,
        interval: Duration,
        encryption_key: kms.IKey | None,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        recorder_role = _role(recorder)

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

        self.seal_queue = builders.queue(
            self,
            "SealQueue",
            retention_period=Duration.days(14),
            encryption_key=encryption_key,
            removal_policy=removal_policy,
            no_dead_letter_queue_because="A seal notice may only leave this queue into a "
            "digest; a stuck notice raises the SealingStalled alarm instead of moving to a DLQ.",
            # A run keeps its notices invisible itself; this covers a run that dies early.
            visibility_timeout=Duration.seconds(SEALER_TIMEOUT.to_seconds() + 30),
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
            description="Signs the records written since the last seal into the digest chain",
            handler=SEALER_HANDLER,
            timeout=SEALER_TIMEOUT,
            environment={
                contract.ENV_TABLE_NAME: table.table_name,
                contract.ENV_DIGEST_TABLE_NAME: self.digest_table.table_name,
                contract.ENV_SEAL_QUEUE_URL: self.seal_queue.queue_url,
                contract.ENV_SIGNING_KEY_ARN: self.signing_key.key_arn,
                contract.ENV_HEARTBEAT_SECONDS: str(int(HEARTBEAT.to_seconds())),
            },
        )
        sealer_role = _role(self.sealer)

        # Only the recorder reports records: a forged notice could get a forged record sealed.
        # (The recorder's exact KMS actions are granted by the pipeline.)
        iam.Grant.add_to_principal(
            grantee=recorder,
            actions=list(SEAL_NOTICE_SEND_ACTIONS),
            resource_arns=[self.seal_queue.queue_arn],
        )
        self.seal_queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheRecorderSends",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(SEAL_NOTICE_SEND_ACTIONS),
                resources=[self.seal_queue.queue_arn],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": recorder_role.role_arn}},
            )
        )
        iam.Grant.add_to_principal(
            grantee=self.sealer,
            actions=list(SEALER_SEAL_QUEUE_ACTIONS),
            resource_arns=[self.seal_queue.queue_arn],
        )
        iam.Grant.add_to_principal(
            grantee=self.sealer,
            actions=list(SEALER_RECORD_READ_ACTIONS),
            resource_arns=[table.table_arn],
        )
        iam.Grant.add_to_principal(
            grantee=self.sealer,
            actions=list(SEALER_DIGEST_TABLE_ACTIONS),
            resource_arns=[self.digest_table.table_arn],
        )
        for statement in append_only_statements(sealer_role):
            compat.add_to_table_resource_policy(self.digest_table, statement)
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
            description="Seals the audit records written since the last digest",
            schedule=events.Schedule.rate(interval),
            targets=[
                targets.LambdaFunction(
                    self.sealer,
                    event=events.RuleTargetInput.from_object({"trigger": "schedule"}),
                    retry_attempts=0,  # the next run seals whatever this one did not
                )
            ],
        )

    def grant_verify(self, grantee: iam.IGrantable, table: dynamodb.ITable) -> iam.Grant:
        """Read what ``audit verify`` checks: the records, the digests and the public key."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(VERIFY_TABLE_ACTIONS),
            resource_arns=[table.table_arn, self.digest_table.table_arn],
        )
        self.signing_key.grant(grantee, *VERIFY_KEY_ACTIONS)
        return grant


def _role(function: lambda_.Function) -> iam.IRole:
    role = function.role
    if role is None:  # every function of the pipeline has its own explicit role
        raise ValueError(f"{function.node.path} has no execution role")
    return role
