"""The digest chain's resources: signing key, seal queue, digest table, sealer and its schedule.

``AuditPipeline`` composes this construct; docs/INTEGRITY.md explains the design and its limits.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from audit_stack.construct import builders

SEALER_HANDLER = "audit_events.seal_records.handler"
DIGEST_PARTITION_KEY = "chain"
DIGEST_SORT_KEY = "sequence"
SEALER_TIMEOUT = Duration.seconds(60)
HEARTBEAT = Duration.hours(1)

# Data-plane writes of a DynamoDB table. The audit and digest tables deny them all to every
# principal, except PutItem to the one role that appends to each.
TABLE_WRITE_ACTIONS_DENIED_TO_ALL = [
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
]
APPEND_ACTION = "dynamodb:PutItem"

FunctionFactory = Callable[..., lambda_.Function]


def append_only_statements(writer: iam.IRole) -> list[iam.PolicyStatement]:
    """A table resource policy: no principal may change or remove items; only ``writer`` adds."""
    return [
        iam.PolicyStatement(
            sid="AppendOnlyNoChanges",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=TABLE_WRITE_ACTIONS_DENIED_TO_ALL,
            # "*" is this table: a resource policy cannot name its own generated ARN.
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="AppendOnlyOneWriter",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=[APPEND_ACTION],
            resources=["*"],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": writer.role_arn}},
        ),
    ]


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
        Validations.of(self.signing_key).acknowledge(
            Acknowledgment(
                id="AwsSolutions-KMS5",
                reason="Asymmetric KMS keys cannot rotate; verifiers keep old public keys.",
            )
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
                name=DIGEST_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=DIGEST_SORT_KEY, type=dynamodb.AttributeType.NUMBER),
            encryption_key=encryption_key,
            removal_policy=removal_policy,
        )

        self.sealer = make_function(
            "SealerFunction",
            description="Signs the records written since the last seal into the digest chain",
            handler=SEALER_HANDLER,
            timeout=SEALER_TIMEOUT,
            environment={
                "TABLE_NAME": table.table_name,
                "DIGEST_TABLE_NAME": self.digest_table.table_name,
                "SEAL_QUEUE_URL": self.seal_queue.queue_url,
                "SIGNING_KEY_ARN": self.signing_key.key_arn,
                "HEARTBEAT_SECONDS": str(int(HEARTBEAT.to_seconds())),
            },
        )
        sealer_role = _role(self.sealer)

        # Only the recorder reports records: a forged notice could get a forged record sealed.
        # Exact action (grant_send_messages would add kms:ReEncrypt*/GenerateDataKey* with a
        # customer key; the recorder's exact KMS actions are granted by the pipeline).
        iam.Grant.add_to_principal(
            grantee=recorder, actions=["sqs:SendMessage"], resource_arns=[self.seal_queue.queue_arn]
        )
        self.seal_queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheRecorderSends",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sqs:SendMessage"],
                resources=[self.seal_queue.queue_arn],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": recorder_role.role_arn}},
            )
        )
        iam.Grant.add_to_principal(
            grantee=self.sealer,
            actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            resource_arns=[self.seal_queue.queue_arn],
        )
        iam.Grant.add_to_principal(
            grantee=self.sealer,
            actions=["dynamodb:GetItem", "dynamodb:BatchGetItem"],
            resource_arns=[table.table_arn],
        )
        iam.Grant.add_to_principal(
            grantee=self.sealer,
            actions=["dynamodb:Query", APPEND_ACTION],
            resource_arns=[self.digest_table.table_arn],
        )
        for statement in append_only_statements(sealer_role):
            self.digest_table.add_to_resource_policy(statement)
        if encryption_key is not None:
            encryption_key.grant(
                self.sealer, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"
            )

        self.signing_key.grant(self.sealer, "kms:Sign")
        # The key policy gives the account's administrators kms:*; Sign stays the sealer's.
        self.signing_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheSealerSigns",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["kms:Sign"],
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
            actions=["dynamodb:Scan", "dynamodb:Query", "dynamodb:GetItem"],
            resource_arns=[table.table_arn, self.digest_table.table_arn],
        )
        self.signing_key.grant(grantee, "kms:GetPublicKey", "kms:DescribeKey")
        return grant


def _role(function: lambda_.Function) -> iam.IRole:
    role = function.role
    if role is None:  # every function of the pipeline has its own explicit role
        raise ValueError(f"{function.node.path} has no execution role")
    return role
