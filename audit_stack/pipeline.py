"""The AuditPipeline construct: SNS topic -> SQS queue (+DLQ) -> recorder Lambda -> DynamoDB.

Every prop has a production-ready default, so ``AuditPipeline(self, "Audit")`` alone is a sound
deployment. The defaults are listed, one row each, in the README's defaults table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import jsii
from aws_cdk import (
    Acknowledgment,
    Duration,
    IStableAnyProducer,
    Lazy,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from audit_stack.lambda_code import lambda_code_dir

# The Powertools layer is resolved at deploy time from the public SSM parameter that the
# Powertools team publishes for each release; keep this equal to requirements-dev.txt's pin
# (a test checks it) so local runs and Lambda run the same library.
POWERTOOLS_VERSION = "3.37.0"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64

SERVICE_NAME = "audit-pipeline"
METRICS_NAMESPACE = "AuditPipeline"

PUBLISHER_HANDLER = "audit_events.delete_account.handler"
RECORDER_HANDLER = "audit_events.record_audit_event.handler"

TABLE_PARTITION_KEY = "subject"
TABLE_SORT_KEY = "event_key"
EVENT_TYPE_INDEX = "by-event-type-shard"
EVENT_TYPE_SHARD_ATTRIBUTE = "event_type_shard"
EVENT_TYPE_ATTRIBUTE = "event_type"
# 10,000 events/s of one type over 16 shards: about 625 writes/s per index partition key, under
# DynamoDB's 1,000 writes/s per partition with room for the spread of a hash.
DEFAULT_EVENT_TYPE_INDEX_SHARDS = 16
MAX_EVENT_TYPE_INDEX_SHARDS = 256
# What a holder of the pseudonym secret may do: read every version (a lookup across rotations).
_SECRET_LOOKUP_ACTIONS = [
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecretVersionIds",
]

# Custom metrics the recorder emits with Powertools Metrics (dimension "service").
METRIC_EVENTS_RECORDED = "AuditEventsRecorded"
METRIC_DUPLICATES_SKIPPED = "DuplicateAuditEventsSkipped"
METRIC_POISON_MESSAGES = "PoisonMessages"

_EVENT_TYPE_PATTERN = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")

# Writes that could change or remove a recorded audit event. Nobody in the stack is granted
# them, and the table's resource policy denies them to every principal (append-only log).
_MUTATING_TABLE_ACTIONS = [
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
]


class AuditPipeline(Construct):
    """Records audit events published to a topic, exactly once, in an append-only table.

    :param max_receive_count: receives before a message moves to the dead-letter queue.
    :param batch_size: SQS messages per recorder invocation (1-10, or up to 10,000 with a
        batching window).
    :param max_batching_window: how long the event source waits to fill a batch.
    :param max_concurrency: most concurrent recorder invocations (2-1000), so a backlog
        cannot overrun the table.
    :param recorder_timeout: the recorder's timeout; the queue's visibility timeout is 6x it.
    :param event_types: event types the queue subscribes to (SNS filter policy).
    :param encryption_key: a customer-managed KMS key for topic, queues and table; by default
        AWS-managed keys (topic, table) and SSE-SQS (queues).
    :param removal_policy: what ``cdk destroy`` does to the table, the queues and the log
        groups. RETAIN by default; DESTROY (for throwaway dev stacks) also lifts the table's
        deletion protection.
    :param log_retention: how long the functions' logs are kept.
    :param oldest_message_age_alarm: alarm when the oldest queued message is this old.
    :param alarm_action: where every alarm (and its return to OK) is sent, e.g. an SNS action.
    :param dashboard: also create a CloudWatch dashboard of the pipeline.
    :param subject_in_clear: record the e-mail address itself as the subject (and in the
        details), as version 1 did, instead of its keyed pseudonym; no pseudonym secret is
        created. For policies that require the address in the audit log.
    :param event_type_index: keep the ``by-event-type-shard`` index (events of one type in a
        time range); each index write costs a write unit.
    :param event_type_index_shards: partition keys per event type in that index (1-256); only
        ever raise it, since events already written stay on their shard.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        max_receive_count: int = 5,
        batch_size: int = 10,
        max_batching_window: Duration | None = None,
        max_concurrency: int = 5,
        recorder_timeout: Duration | None = None,
        event_types: Sequence[str] = ("AccountDeleted",),
        encryption_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        oldest_message_age_alarm: Duration | None = None,
        alarm_action: cloudwatch.IAlarmAction | None = None,
        dashboard: bool = False,
        subject_in_clear: bool = False,
        event_type_index: bool = True,
        event_type_index_shards: int = DEFAULT_EVENT_TYPE_INDEX_SHARDS,
    ) -> None:
        recorder_timeout = recorder_timeout or Duration.seconds(30)
        oldest_message_age_alarm = oldest_message_age_alarm or Duration.minutes(15)
        # Validate every prop before creating any child, so bad input leaves nothing behind.
        _validate_props(
            max_receive_count=max_receive_count,
            batch_size=batch_size,
            max_batching_window=max_batching_window,
            max_concurrency=max_concurrency,
            recorder_timeout=recorder_timeout,
            event_types=event_types,
            oldest_message_age_alarm=oldest_message_age_alarm,
            event_type_index_shards=event_type_index_shards,
        )
        super().__init__(scope, construct_id)

        self._encryption_key = encryption_key
        retain = removal_policy

        self._topic = sns.Topic(
            self,
            "Topic",
            display_name="Audit events",
            # SSE needs a KMS key: the AWS-managed aws/sns key unless the user brings one.
            master_key=encryption_key
            or kms.Alias.from_alias_name(self, "AwsManagedSnsKey", "alias/aws/sns"),
            enforce_ssl=True,
            signature_version="2",
        )

        queue_encryption = (
            sqs.QueueEncryption.KMS if encryption_key else sqs.QueueEncryption.SQS_MANAGED
        )
        self._dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            retention_period=Duration.days(14),
            encryption=queue_encryption,
            encryption_master_key=encryption_key,
            enforce_ssl=True,
            removal_policy=retain,
        )
        Validations.of(self._dead_letter_queue).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is the pipeline's dead-letter queue; it needs none itself.",
            )
        )
        self._queue = sqs.Queue(
            self,
            "Queue",
            # AWS's guidance for SQS event sources: at least 6x the function timeout.
            visibility_timeout=Duration.seconds(recorder_timeout.to_seconds() * 6),
            # Shorter than the DLQ's 14 days: a message keeps its first enqueue time when it
            # moves to the DLQ, so the DLQ must retain longer than the source queue.
            retention_period=Duration.days(7),
            encryption=queue_encryption,
            encryption_master_key=encryption_key,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=max_receive_count, queue=self._dead_letter_queue
            ),
            removal_policy=retain,
        )
        self._topic.add_subscription(
            subscriptions.SqsSubscription(
                self._queue,
                # The SNS envelope is kept: its MessageId is recorded as provenance.
                raw_message_delivery=False,
                filter_policy={
                    EVENT_TYPE_ATTRIBUTE: sns.SubscriptionFilter.string_filter(
                        allowlist=list(event_types)
                    )
                },
            )
        )

        self._table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(
                name=TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=TABLE_SORT_KEY, type=dynamodb.AttributeType.STRING),
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
            removal_policy=retain,
            resource_policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="AppendOnlyAuditLog",
                        effect=iam.Effect.DENY,
                        principals=[iam.AnyPrincipal()],
                        actions=_MUTATING_TABLE_ACTIONS,
                        # "*" is this table: a resource policy cannot name its own generated ARN.
                        resources=["*"],
                    )
                ]
            ),
        )
        self._event_type_index_shards = event_type_index_shards if event_type_index else 0
        if event_type_index:
            self._table.add_global_secondary_index(
                index_name=EVENT_TYPE_INDEX,
                # "<event_type>#<shard>": one type's writes spread over the shards.
                partition_key=dynamodb.Attribute(
                    name=EVENT_TYPE_SHARD_ATTRIBUTE, type=dynamodb.AttributeType.STRING
                ),
                sort_key=dynamodb.Attribute(
                    name=TABLE_SORT_KEY, type=dynamodb.AttributeType.STRING
                ),
                projection_type=dynamodb.ProjectionType.ALL,
            )

        self._pseudonym_secret: secretsmanager.Secret | None = None
        if not subject_in_clear:
            self._pseudonym_secret = secretsmanager.Secret(
                self,
                "PseudonymSecret",
                description="Keys the HMAC-SHA-256 pseudonyms of audit subjects (e-mail "
                "addresses); grant it with AuditPipeline.grant_lookup",
                # 64 of 62 characters: about 380 bits, more than HMAC-SHA-256's 256-bit key.
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    password_length=64, exclude_punctuation=True, include_space=False
                ),
                encryption_key=encryption_key,
                removal_policy=retain,
            )
            # IAM alone would let any principal with secretsmanager:GetSecretValue on "*" (an
            # administrator) read the key; this denies every principal not granted a lookup.
            self._lookup_principals: list[str] = []
            self._pseudonym_secret.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="OnlyGrantedPrincipalsReadThePseudonymKey",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["secretsmanager:GetSecretValue"],
                    resources=["*"],
                    conditions={
                        "ArnNotEquals": {
                            "aws:PrincipalArn": Lazy.any(
                                _Produce(lambda: list(self._lookup_principals))
                            )
                        }
                    },
                )
            )
            Validations.of(self._pseudonym_secret).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-SMG4",
                    reason="Rotating the pseudonym key gives every account a new pseudonym: "
                    "lookups of older records then need the older versions (the audit CLI "
                    "reads them all). Rotate deliberately, by hand (README).",
                )
            )

        code = lambda_.Code.from_asset(
            str(lambda_code_dir()),
            exclude=["**/__pycache__", "**/*.pyc", "*.egg-info"],
        )
        powertools_layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            ssm.StringParameter.value_for_string_parameter(
                self,
                f"/aws/service/powertools/python/arm64/{RUNTIME.name}/{POWERTOOLS_VERSION}",
            ),
        )

        self._publisher = self._function(
            "DeleteAccountFunction",
            description="Publishes an AccountDeleted audit event (the original deleteAccount)",
            handler=PUBLISHER_HANDLER,
            code=code,
            layer=powertools_layer,
            timeout=Duration.seconds(10),
            environment={"TOPIC_ARN": self._topic.topic_arn, **self._subject_environment()},
            log_retention=log_retention,
            removal_policy=retain,
        )
        self.grant_publish(self._publisher)
        self.grant_lookup(self._publisher)

        self._recorder = self._function(
            "RecordAuditEventFunction",
            description="Records audit events from the queue, once each "
            "(the original recordDeletedAccountInfo)",
            handler=RECORDER_HANDLER,
            code=code,
            layer=powertools_layer,
            timeout=recorder_timeout,
            environment={
                "TABLE_NAME": self._table.table_name,
                "EVENT_TYPE_INDEX_SHARDS": str(self._event_type_index_shards),
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                **self._subject_environment(),
            },
            log_retention=log_retention,
            removal_policy=retain,
        )
        # Records messages that still name an address (version 1) under its pseudonym.
        self.grant_lookup(self._recorder)
        self._recorder.add_event_source(
            event_sources.SqsEventSource(
                self._queue,
                batch_size=batch_size,
                max_batching_window=max_batching_window,
                report_batch_item_failures=True,
                max_concurrency=max_concurrency,
            )
        )
        # PutItem on the table only (no indexes, no other writes): the recorder can add audit
        # events, never change or remove them.
        iam.Grant.add_to_principal(
            grantee=self._recorder,
            actions=["dynamodb:PutItem"],
            resource_arns=[self._table.table_arn],
        )
        if encryption_key is not None:
            # Exact actions rather than grant_encrypt_decrypt's ReEncrypt*/GenerateDataKey*.
            encryption_key.grant(
                self._recorder,
                "kms:Decrypt",
                "kms:Encrypt",
                "kms:GenerateDataKey",
                "kms:DescribeKey",
            )

        self._alarms = self._create_alarms(oldest_message_age_alarm, alarm_action)
        if dashboard:
            self._create_dashboard()

    def _subject_environment(self) -> dict[str, str]:
        if self._pseudonym_secret is None:
            return {"SUBJECT_IN_CLEAR": "true"}
        return {"PSEUDONYM_SECRET_ARN": self._pseudonym_secret.secret_arn}

    def _create_alarms(
        self, oldest_message_age: Duration, action: cloudwatch.IAlarmAction | None
    ) -> tuple[cloudwatch.Alarm, ...]:
        one_minute, five_minutes = Duration.minutes(1), Duration.minutes(5)
        specs = [
            (
                "DeadLetterQueueNotEmptyAlarm",
                self.metric_dead_letter_queue_depth(period=one_minute),
                1,
                "Audit events failed max_receive_count times and wait in the DLQ: "
                "inspect them, fix the cause, then redrive.",
            ),
            (
                "OldestMessageAgeAlarm",
                self.metric_oldest_message_age(period=one_minute),
                oldest_message_age.to_seconds(),
                "Audit events are waiting too long in the queue: the recorder is failing, "
                "throttled or too slow.",
            ),
            (
                "RecorderErrorsAlarm",
                self.metric_recorder_errors(period=five_minutes),
                1,
                "The recorder function failed (whole batches return to the queue).",
            ),
            (
                "RecorderThrottlesAlarm",
                self.metric_recorder_throttles(period=five_minutes),
                1,
                "The recorder function was throttled (account or reserved concurrency).",
            ),
        ]
        alarms = []
        for alarm_id, metric, threshold, description in specs:
            alarm = metric.create_alarm(
                self,
                alarm_id,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            if action is not None:
                alarm.add_alarm_action(action)
                alarm.add_ok_action(action)
            alarms.append(alarm)
        return tuple(alarms)

    def _create_dashboard(self) -> None:
        board = cloudwatch.Dashboard(self, "Dashboard")
        board.add_widgets(
            cloudwatch.GraphWidget(
                title="Audit events",
                left=[
                    self.metric_events_recorded(),
                    self.metric_duplicates_skipped(),
                    self.metric_poison_messages(),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Queues",
                left=[self.metric_dead_letter_queue_depth()],
                right=[self.metric_oldest_message_age()],
            ),
            cloudwatch.GraphWidget(
                title="Recorder",
                left=[self.metric_recorder_errors(), self.metric_recorder_throttles()],
            ),
        )
        board.add_widgets(
            cloudwatch.AlarmStatusWidget(alarms=list(self._alarms), title="Alarms", width=24)
        )

    def _function(
        self,
        construct_id: str,
        *,
        description: str,
        handler: str,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        timeout: Duration,
        environment: dict[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            retention=log_retention,
            removal_policy=removal_policy,
        )
        # An explicit role instead of AWSLambdaBasicExecutionRole: it may write to its own log
        # group only.
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {construct_id}",
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            construct_id,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=code,
            layers=[layer],
            memory_size=256,
            timeout=timeout,
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
            },
        )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level "
                "permissions; tracing is on for every function.",
            ),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id_hint(log_group)}>:*]",
                reason="Log streams are created per execution environment with generated names "
                "inside the function's own log group.",
            ),
        )
        return function

    @property
    def topic(self) -> sns.ITopic:
        """The topic audit events are published to."""
        return self._topic

    @property
    def queue(self) -> sqs.IQueue:
        """The queue the recorder consumes."""
        return self._queue

    @property
    def dead_letter_queue(self) -> sqs.IQueue:
        """Where messages go after max_receive_count failed receives."""
        return self._dead_letter_queue

    @property
    def table(self) -> dynamodb.ITable:
        """The append-only audit table."""
        return self._table

    @property
    def publisher_function(self) -> lambda_.IFunction:
        """The original solution's deleteAccount: publishes AccountDeleted events."""
        return self._publisher

    @property
    def recorder_function(self) -> lambda_.IFunction:
        """The original solution's recordDeletedAccountInfo: writes events to the table."""
        return self._recorder

    @property
    def pseudonym_secret(self) -> secretsmanager.ISecret | None:
        """The key of the subjects' pseudonyms; None with ``subject_in_clear``."""
        return self._pseudonym_secret

    @property
    def event_type_index_shards(self) -> int:
        """Partition keys per event type in the by-type index; 0 without the index."""
        return self._event_type_index_shards

    @property
    def alarms(self) -> tuple[cloudwatch.IAlarm, ...]:
        """DLQ not empty, oldest message too old, recorder errors, recorder throttles."""
        return self._alarms

    def metric_dead_letter_queue_depth(self, **props: Any) -> cloudwatch.Metric:
        """Messages waiting in the DLQ (Maximum)."""
        return self._dead_letter_queue.metric_approximate_number_of_messages_visible(
            **{"statistic": "Maximum", **props}
        )

    def metric_oldest_message_age(self, **props: Any) -> cloudwatch.Metric:
        """Age in seconds of the oldest message in the queue (Maximum)."""
        return self._queue.metric_approximate_age_of_oldest_message(
            **{"statistic": "Maximum", **props}
        )

    def metric_recorder_errors(self, **props: Any) -> cloudwatch.Metric:
        """Failed recorder invocations (Sum)."""
        return self._recorder.metric_errors(**{"statistic": "Sum", **props})

    def metric_recorder_throttles(self, **props: Any) -> cloudwatch.Metric:
        """Throttled recorder invocations (Sum)."""
        return self._recorder.metric_throttles(**{"statistic": "Sum", **props})

    def metric_events_recorded(self, **props: Any) -> cloudwatch.Metric:
        """Audit events written to the table (custom metric, Sum)."""
        return self._custom_metric(METRIC_EVENTS_RECORDED, props)

    def metric_duplicates_skipped(self, **props: Any) -> cloudwatch.Metric:
        """Redelivered events recognised as already recorded (custom metric, Sum)."""
        return self._custom_metric(METRIC_DUPLICATES_SKIPPED, props)

    def metric_poison_messages(self, **props: Any) -> cloudwatch.Metric:
        """Messages the recorder rejected as malformed (custom metric, Sum)."""
        return self._custom_metric(METRIC_POISON_MESSAGES, props)

    def _custom_metric(self, name: str, props: dict[str, Any]) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            **{
                "namespace": METRICS_NAMESPACE,
                "metric_name": name,
                "dimensions_map": {"service": SERVICE_NAME},
                "statistic": "Sum",
                "period": Duration.minutes(5),
                **props,
            }
        )

    def grant_publish(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let another principal publish audit events to the topic."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee, actions=["sns:Publish"], resource_arns=[self._topic.topic_arn]
        )
        # With the AWS-managed aws/sns key, its own key policy already lets any principal of
        # the account use it through SNS; a customer key needs exactly these two actions.
        if self._encryption_key is not None:
            self._encryption_key.grant(grantee, "kms:GenerateDataKey", "kms:Decrypt")
        return grant

    def grant_lookup(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal turn e-mail addresses into subjects (read the pseudonym secret).

        Whoever holds it can test whether an address is in the audit log: grant it to the
        functions and operators that look accounts up, and to nobody else. With
        ``subject_in_clear`` there is no secret, and nothing is granted.
        """
        if self._pseudonym_secret is None:
            return iam.Grant.drop(grantee, "subject_in_clear: no pseudonym secret")
        principal = grantee.grant_principal
        arn = getattr(principal, "role_arn", None) or getattr(principal, "user_arn", None)
        if arn is None:
            raise ValueError(
                "AuditPipeline grant_lookup: the grantee must be an IAM role or user (or have "
                "one, like a function): the secret's resource policy names who may read it"
            )
        self._lookup_principals.append(arn)
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=_SECRET_LOOKUP_ACTIONS,
            resource_arns=[self._pseudonym_secret.secret_arn],
        )
        if self._encryption_key is not None:
            self._encryption_key.grant(grantee, "kms:Decrypt")
        return grant


@jsii.implements(IStableAnyProducer)
class _Produce:
    """A value computed at synthesis, after every grant has been made."""

    def __init__(self, produce: Callable[[], Any]) -> None:
        self._produce = produce

    def produce(self) -> Any:
        return self._produce()


def _logical_id_hint(log_group: logs.LogGroup) -> str:
    return Stack.of(log_group).get_logical_id(log_group.node.default_child)  # type: ignore[arg-type]


def _validate_props(
    *,
    max_receive_count: int,
    batch_size: int,
    max_batching_window: Duration | None,
    max_concurrency: int,
    recorder_timeout: Duration,
    event_types: Sequence[str],
    oldest_message_age_alarm: Duration,
    event_type_index_shards: int,
) -> None:
    def fail(field: str, rule: str) -> None:
        raise ValueError(f"AuditPipeline {field}: {rule}")

    if not 1 <= max_receive_count <= 1000:
        fail("max_receive_count", "must be between 1 and 1000")
    window_seconds = max_batching_window.to_seconds() if max_batching_window else 0
    if not 0 <= window_seconds <= 300:
        fail("max_batching_window", "must be at most 5 minutes")
    if window_seconds == 0 and not 1 <= batch_size <= 10:
        fail("batch_size", "must be between 1 and 10 without a max_batching_window")
    if not 1 <= batch_size <= 10_000:
        fail("batch_size", "must be between 1 and 10000")
    if not 2 <= max_concurrency <= 1000:
        fail("max_concurrency", "must be between 2 and 1000 (an SQS event source limit)")
    if not 1 <= recorder_timeout.to_seconds() <= 150:
        # 6x the timeout is the visibility timeout, capped by SQS at 12 hours; 150 s keeps a
        # backlog's retries quick as well.
        fail("recorder_timeout", "must be between 1 and 150 seconds")
    if isinstance(event_types, str) or not event_types:
        fail("event_types", "must be a non-empty list of event type names")
    for event_type in event_types:
        if not isinstance(event_type, str) or not _EVENT_TYPE_PATTERN.match(event_type):
            fail("event_types", "each must match ^[A-Z][A-Za-z0-9]{0,63}$ (e.g. AccountDeleted)")
    if oldest_message_age_alarm.to_seconds() < 60:
        fail("oldest_message_age_alarm", "must be at least 1 minute")
    if (
        isinstance(event_type_index_shards, bool)
        or not isinstance(event_type_index_shards, int)
        or not 1 <= event_type_index_shards <= MAX_EVENT_TYPE_INDEX_SHARDS
    ):
        fail(
            "event_type_index_shards",
            f"must be a whole number between 1 and {MAX_EVENT_TYPE_INDEX_SHARDS} "
            f"(got {event_type_index_shards!r})",
        )
