"""The AuditPipeline construct: SNS topic -> SQS queue (+DLQ) -> recorder Lambda -> DynamoDB.

Every prop has a production-ready default, so ``AuditPipeline(self, "Audit")`` alone is a sound
deployment. The defaults are listed, one row each, in the README's defaults table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jsii
from aws_cdk import (
    Acknowledgment,
    Annotations,
    Duration,
    IStableAnyProducer,
    Lazy,
    RemovalPolicy,
    Stack,
    Token,
    Validations,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from audit_stack import discovery
from audit_stack.construct import builders
from audit_stack.construct.encryption import (
    PUBLISHER_KEY_ACTIONS,
    QueueSubscription,
    require_key_statement,
    sns_delivery_statement,
)
from audit_stack.construct.marking import PipelineMarker
from audit_stack.construct.sealing import DigestChain, append_only_statements
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

# Custom metrics the sealer emits.
METRIC_TAMPERED_RECORDS = "TamperedAuditRecords"

_EVENT_TYPE_PATTERN = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")

# What an operator needs to move messages from the DLQ back to the queue (a message move task
# sends to the source queue with the caller's own permissions).
_REDRIVE_DLQ_ACTIONS = [
    "sqs:StartMessageMoveTask",
    "sqs:ListMessageMoveTasks",
    "sqs:CancelMessageMoveTask",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
]

# CloudTrail management events that weaken the audit log's controls (see docs/INTEGRITY.md).
_CONTROL_CHANGE_EVENTS = [
    "UpdateTable",
    "DeleteTable",
    "UpdateContinuousBackups",
    "PutResourcePolicy",
    "DeleteResourcePolicy",
    "RestoreTableToPointInTime",
    "SetQueueAttributes",
    "AddPermission",
    "RemovePermission",
    "DeleteQueue",
    "PurgeQueue",
    "PutKeyPolicy",
    "ScheduleKeyDeletion",
    "DisableKey",
    "CreateGrant",
    {"prefix": "UpdateFunctionCode"},
    {"prefix": "UpdateFunctionConfiguration"},
    {"prefix": "DeleteFunction"},
    {"prefix": "RemovePermission"},
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
        Without one, synthesis shows a warning: alarms that reach nobody protect nothing.
    :param dashboard: also create a CloudWatch dashboard of the pipeline.
    :param seal_interval: how often the sealer signs the records written since the last digest
        (whole minutes, 1 minute to 1 day).
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
        seal_interval: Duration | None = None,
        subject_in_clear: bool = False,
        event_type_index: bool = True,
        event_type_index_shards: int = DEFAULT_EVENT_TYPE_INDEX_SHARDS,
    ) -> None:
        _validate_prop_types(
            max_receive_count=max_receive_count,
            batch_size=batch_size,
            max_batching_window=max_batching_window,
            max_concurrency=max_concurrency,
            recorder_timeout=recorder_timeout,
            event_types=event_types,
            encryption_key=encryption_key,
            removal_policy=removal_policy,
            log_retention=log_retention,
            oldest_message_age_alarm=oldest_message_age_alarm,
            alarm_action=alarm_action,
            dashboard=dashboard,
            seal_interval=seal_interval,
            subject_in_clear=subject_in_clear,
            event_type_index=event_type_index,
        )
        recorder_timeout = recorder_timeout or Duration.seconds(30)
        oldest_message_age_alarm = oldest_message_age_alarm or Duration.minutes(15)
        seal_interval = seal_interval or Duration.minutes(5)
        # Validate every prop before creating any child, so bad input leaves nothing behind.
        _validate_props(
            max_receive_count=max_receive_count,
            batch_size=batch_size,
            max_batching_window=max_batching_window,
            max_concurrency=max_concurrency,
            recorder_timeout=recorder_timeout,
            event_types=event_types,
            oldest_message_age_alarm=oldest_message_age_alarm,
            seal_interval=seal_interval,
            event_type_index_shards=event_type_index_shards,
        )
        super().__init__(scope, construct_id)
        self._redrive_principal_arns: list[str] = []
        # Tooling (emulator, fixture, CLI) finds this pipeline's resources by these marks.
        self._marker = PipelineMarker(self)

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

        self._dead_letter_queue = builders.queue(
            self,
            "DeadLetterQueue",
            retention_period=Duration.days(14),
            encryption_key=encryption_key,
            removal_policy=retain,
            no_dead_letter_queue_because="This queue is the pipeline's dead-letter queue; it "
            "needs none itself.",
        )
        self._queue = builders.queue(
            self,
            "Queue",
            # Shorter than the DLQ's 14 days: a message keeps its first enqueue time when it
            # moves to the DLQ, so the DLQ must retain longer than the source queue.
            retention_period=Duration.days(7),
            encryption_key=encryption_key,
            removal_policy=retain,
            # AWS's guidance for SQS event sources: at least 6x the function timeout.
            visibility_timeout=Duration.seconds(recorder_timeout.to_seconds() * 6),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=max_receive_count, queue=self._dead_letter_queue
            ),
        )
        # Notifications SNS could not deliver to the queue (e.g. the queue's key was disabled).
        self._subscription_dead_letter_queue = builders.queue(
            self,
            "SubscriptionDeadLetterQueue",
            retention_period=Duration.days(14),
            encryption_key=encryption_key,
            removal_policy=retain,
            no_dead_letter_queue_because="This queue is the topic subscription's dead-letter "
            "queue.",
        )
        self._topic.add_subscription(
            QueueSubscription(
                self._queue,
                dead_letter_queue=self._subscription_dead_letter_queue,
                filter_policy={
                    EVENT_TYPE_ATTRIBUTE: sns.SubscriptionFilter.string_filter(
                        allowlist=list(event_types)
                    )
                },
            )
        )
        if encryption_key is not None:
            require_key_statement(
                self,
                encryption_key,
                sns_delivery_statement(self),
                purpose="SNS cannot deliver audit events to the queue encrypted with it otherwise",
            )

        self._table = builders.table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(
                name=TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=TABLE_SORT_KEY, type=dynamodb.AttributeType.STRING),
            encryption_key=encryption_key,
            removal_policy=retain,
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

        make_function = partial(
            self._function,
            code=code,
            layer=powertools_layer,
            log_retention=log_retention,
            removal_policy=retain,
        )
        self._publisher = make_function(
            "DeleteAccountFunction",
            description="Publishes an AccountDeleted audit event (the original deleteAccount)",
            handler=PUBLISHER_HANDLER,
            timeout=Duration.seconds(10),
            environment={"TOPIC_ARN": self._topic.topic_arn, **self._subject_environment()},
        )
        self.grant_publish(self._publisher)
        self.grant_lookup(self._publisher)

        self._recorder = make_function(
            "RecordAuditEventFunction",
            description="Records audit events from the queue, once each "
            "(the original recordDeletedAccountInfo)",
            handler=RECORDER_HANDLER,
            timeout=recorder_timeout,
            environment={
                "TABLE_NAME": self._table.table_name,
                "EVENT_TYPE_INDEX_SHARDS": str(self._event_type_index_shards),
                **self._subject_environment(),
            },
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
        recorder_role = self._recorder.role
        assert recorder_role is not None  # _function always gives an explicit role
        # Only the recorder appends; nobody, the recorder included, changes or removes a record.
        for statement in append_only_statements(recorder_role):
            self._table.add_to_resource_policy(statement)
        # Only the topic feeds the queue, and the principals allowed to redrive its DLQ
        # (grant_redrive): anyone else with sqs:SendMessage could inject a well-formed event.
        self._queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheTopicOrARedriveSends",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sqs:SendMessage"],
                resources=[self._queue.queue_arn],
                conditions={
                    "ArnNotEquals": {
                        "aws:SourceArn": self._topic.topic_arn,
                        # Omitted while nobody may redrive: then only the topic sends.
                        "aws:PrincipalArn": Lazy.any(
                            _Produce(lambda: list(self._redrive_principal_arns) or None)
                        ),
                    }
                },
            )
        )

        self._chain = DigestChain(
            self,
            "Sealing",
            table=self._table,
            recorder=self._recorder,
            make_function=make_function,
            interval=seal_interval,
            encryption_key=encryption_key,
            removal_policy=retain,
        )
        self._recorder.add_environment("SEAL_QUEUE_URL", self._chain.seal_queue.queue_url)
        self._control_changes = self._watch_control_changes()

        if alarm_action is None:
            Annotations.of(self).add_warning_v2(
                "audit-pipeline:noAlarmAction",
                "AuditPipeline has no alarm_action: its alarms (dead letters, tampering, "
                "control changes) will reach nobody. Pass alarm_action=SnsAction(topic).",
            )
        for construct, role in (
            (self._topic, discovery.TOPIC),
            (self._queue, discovery.QUEUE),
            (self._dead_letter_queue, discovery.DEAD_LETTER_QUEUE),
            (self._table, discovery.TABLE),
            (self._publisher, discovery.PUBLISHER),
            (self._recorder, discovery.RECORDER),
            (self._subscription_dead_letter_queue, discovery.SUBSCRIPTION_DEAD_LETTER_QUEUE),
            (self._chain.seal_queue, discovery.SEAL_QUEUE),
            (self._chain.digest_table, discovery.DIGEST_TABLE),
            (self._chain.signing_key, discovery.SIGNING_KEY),
        ):
            self._marker.assign(construct, role)
        if self._pseudonym_secret is not None:
            self._marker.assign(self._pseudonym_secret, discovery.PSEUDONYM_SECRET)

        self._alarms = self._create_alarms(oldest_message_age_alarm, seal_interval, alarm_action)
        if dashboard:
            self._create_dashboard()

    def _watch_control_changes(self) -> events.Rule:
        """A rule matching CloudTrail's record of any change that weakens the log's controls."""
        chain = self._chain
        tables = [self._table, chain.digest_table]
        queues = [self._queue, chain.seal_queue]
        functions = [self._recorder, chain.sealer]
        return events.Rule(
            self,
            "ControlChangeRule",
            description="Changes to the audit log's tables, queues, signing key or functions "
            "(CloudTrail management events; needs a trail in this region)",
            event_pattern=events.EventPattern(
                detail_type=["AWS API Call via CloudTrail"],
                detail={
                    "eventName": _CONTROL_CHANGE_EVENTS,
                    "$or": [
                        {"requestParameters": {"tableName": [t.table_name for t in tables]}},
                        {"requestParameters": {"resourceArn": [t.table_arn for t in tables]}},
                        {"requestParameters": {"queueUrl": [q.queue_url for q in queues]}},
                        {
                            "requestParameters": {
                                "keyId": [chain.signing_key.key_id, chain.signing_key.key_arn]
                            }
                        },
                        {
                            "requestParameters": {
                                "functionName": [f.function_name for f in functions]
                                + [f.function_arn for f in functions]
                            }
                        },
                    ],
                },
            ),
        )

    def _subject_environment(self) -> dict[str, str]:
        if self._pseudonym_secret is None:
            return {"SUBJECT_IN_CLEAR": "true"}
        return {"PSEUDONYM_SECRET_ARN": self._pseudonym_secret.secret_arn}

    def _create_alarms(
        self,
        oldest_message_age: Duration,
        seal_interval: Duration,
        action: cloudwatch.IAlarmAction | None,
    ) -> tuple[cloudwatch.Alarm, ...]:
        one_minute, five_minutes = Duration.minutes(1), Duration.minutes(5)
        specs: list[tuple[str, cloudwatch.IMetric, float, str]] = [
            (
                "DeadLetterQueueNotEmptyAlarm",
                self.metric_dead_letter_queue_depth(period=one_minute),
                1,
                "Audit events failed max_receive_count times and wait in the DLQ (visible or "
                "being read): inspect them, fix the cause, then redrive.",
            ),
            (
                "SubscriptionDeadLetterQueueNotEmptyAlarm",
                self.metric_subscription_dead_letter_queue_depth(period=one_minute),
                1,
                "SNS could not deliver audit events to the queue (e.g. a key or queue policy "
                "changed); they wait in the subscription's dead-letter queue.",
            ),
            (
                "PublisherErrorsAlarm",
                self.metric_publisher_errors(period=five_minutes),
                1,
                "The publisher function failed: callers' audit events may not be published.",
            ),
            (
                "SealerErrorsAlarm",
                self.metric_sealer_errors(period=five_minutes),
                1,
                "The sealer function failed; records stay unsealed until a run succeeds.",
            ),
            (
                "SealingStalledAlarm",
                self.metric_oldest_seal_notice_age(period=one_minute),
                seal_interval.to_seconds() * 2 + 300,
                "Records have waited more than two seal intervals to be sealed.",
            ),
            (
                "TamperedRecordsAlarm",
                self.metric_tampered_records(period=five_minutes),
                1,
                "The sealer found a recorded audit event altered or removed before sealing.",
            ),
            (
                "ControlChangedAlarm",
                self.metric_control_changes(period=five_minutes),
                1,
                "Someone changed the audit log's table, queue, signing key or function "
                "settings (resource policy, PITR, deletion protection, code...).",
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
            alarm = cloudwatch.Alarm(
                self,
                alarm_id,
                metric=metric,
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
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
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
    def sealer_function(self) -> lambda_.IFunction:
        """Signs the records written since the last seal into the digest chain."""
        return self._chain.sealer

    @property
    def digest_table(self) -> dynamodb.ITable:
        """The signed, chained digests (docs/INTEGRITY.md)."""
        return self._chain.digest_table

    @property
    def signing_key(self) -> kms.IKey:
        """The asymmetric key only the sealer may Sign with; verifiers use its public key."""
        return self._chain.signing_key

    @property
    def seal_queue(self) -> sqs.IQueue:
        """The recorder's reports of what it wrote, waiting for the sealer."""
        return self._chain.seal_queue

    @property
    def subscription_dead_letter_queue(self) -> sqs.IQueue:
        """Notifications SNS could not deliver to the queue."""
        return self._subscription_dead_letter_queue

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
        """Every alarm of the pipeline (README: "Alarms")."""
        return self._alarms

    def metric_dead_letter_queue_depth(self, **props: Any) -> cloudwatch.IMetric:
        """Messages in the DLQ, visible or in flight (Maximum of each, summed)."""
        return _queue_depth(self._dead_letter_queue, "DLQ messages", props)

    def metric_subscription_dead_letter_queue_depth(self, **props: Any) -> cloudwatch.IMetric:
        """Undeliverable notifications in the subscription's DLQ, visible or in flight."""
        return _queue_depth(self._subscription_dead_letter_queue, "Undelivered", props)

    def metric_publisher_errors(self, **props: Any) -> cloudwatch.Metric:
        """Failed publisher invocations (Sum)."""
        return self._publisher.metric_errors(**{"statistic": "Sum", **props})

    def metric_sealer_errors(self, **props: Any) -> cloudwatch.Metric:
        """Failed sealer runs (Sum)."""
        return self._chain.sealer.metric_errors(**{"statistic": "Sum", **props})

    def metric_oldest_seal_notice_age(self, **props: Any) -> cloudwatch.Metric:
        """Age in seconds of the oldest record report waiting for the sealer (Maximum)."""
        return self._chain.seal_queue.metric_approximate_age_of_oldest_message(
            **{"statistic": "Maximum", **props}
        )

    def metric_tampered_records(self, **props: Any) -> cloudwatch.Metric:
        """Records the sealer found altered or removed before sealing (custom metric, Sum)."""
        return self._custom_metric(METRIC_TAMPERED_RECORDS, props)

    def metric_control_changes(self, **props: Any) -> cloudwatch.Metric:
        """CloudTrail events that changed the log's controls (EventBridge TriggeredRules)."""
        return cloudwatch.Metric(
            **{
                "namespace": "AWS/Events",
                "metric_name": "TriggeredRules",
                "dimensions_map": {"RuleName": self._control_changes.rule_name},
                "statistic": "Sum",
                "period": Duration.minutes(5),
                **props,
            }
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
            self._encryption_key.grant(grantee, *PUBLISHER_KEY_ACTIONS)
        return grant

    def grant_redrive(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal move messages from the DLQ back to the queue (``audit dlq redrive``).

        The queue's policy denies SendMessage to everyone but the topic and these principals,
        and a DLQ redrive sends with the caller's permissions. The grantee must be a role or a
        user (its ARN goes into the queue policy).
        """
        principal = grantee.grant_principal
        arn: str
        if hasattr(principal, "role_arn"):
            arn = principal.role_arn
        elif hasattr(principal, "user_arn"):
            arn = principal.user_arn
        elif isinstance(principal, iam.ArnPrincipal):
            arn = principal.arn
        else:
            raise ValueError(
                "AuditPipeline grant_redrive: the grantee must be an IAM role or user, "
                f"got {type(principal).__name__}"
            )
        self._redrive_principal_arns.append(arn)
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=_REDRIVE_DLQ_ACTIONS,
            resource_arns=[self._dead_letter_queue.queue_arn],
        )
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["sqs:SendMessage"], resource_arns=[self._queue.queue_arn]
        )
        if self._encryption_key is not None:
            self._encryption_key.grant(grantee, "kms:GenerateDataKey", "kms:Decrypt")
        return grant

    def grant_verify(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal run ``audit verify``: read records and digests, get the public key."""
        return self._chain.grant_verify(grantee, self._table)

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

    def allow_publishers(
        self, *, accounts: Sequence[str] = (), organization_id: str | None = None
    ) -> None:
        """Let principals of other AWS accounts publish audit events to the topic, e.g. workload
        accounts publishing to a central audit account.

        Adds a topic policy statement per kind of principal (the listed accounts; every account
        of the organization), and, with a customer-managed ``encryption_key``, the key policy
        statement those publishers need (only through SNS). Each account still has to allow its
        own principals ``sns:Publish`` on the topic (and the key's two actions) with IAM.

        :param accounts: 12-digit AWS account ids.
        :param organization_id: an AWS Organizations id (``o-...``).
        """
        _validate_publishers(accounts, organization_id)
        groups: list[tuple[str, list[iam.IPrincipal]]] = []
        if accounts:
            groups.append(("Accounts", [iam.AccountPrincipal(account) for account in accounts]))
        if organization_id is not None:
            groups.append(("Organization", [iam.OrganizationPrincipal(organization_id)]))
        for name, principals in groups:
            self._topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"AllowAuditPublishersFrom{name}",
                    principals=principals,
                    actions=["sns:Publish"],
                    resources=[self._topic.topic_arn],
                )
            )
            if self._encryption_key is not None:
                stack = Stack.of(self)
                require_key_statement(
                    self,
                    self._encryption_key,
                    iam.PolicyStatement(
                        sid=f"AllowAuditPublishersFrom{name}",
                        principals=principals,
                        actions=list(PUBLISHER_KEY_ACTIONS),
                        resources=["*"],
                        conditions={
                            "StringEquals": {
                                "kms:ViaService": f"sns.{stack.region}.{stack.url_suffix}"
                            }
                        },
                    ),
                    purpose=f"publishers from other accounts ({name.lower()}) cannot encrypt "
                    "their audit events for the topic otherwise",
                )


@jsii.implements(IStableAnyProducer)
class _Produce:
    """A value computed at synthesis, after every grant has been made."""

    def __init__(self, produce: Callable[[], Any]) -> None:
        self._produce = produce

    def produce(self) -> Any:
        return self._produce()


def _queue_depth(queue: sqs.Queue, label: str, props: dict[str, Any]) -> cloudwatch.IMetric:
    # Visible alone drops to zero while someone reads the DLQ (`audit dlq show`), which would
    # flip the alarm back to OK with the messages still there.
    period = props.pop("period", Duration.minutes(1))
    return cloudwatch.MathExpression(
        expression="visible + inflight",
        using_metrics={
            "visible": queue.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=period
            ),
            "inflight": queue.metric_approximate_number_of_messages_not_visible(
                statistic="Maximum", period=period
            ),
        },
        label=label,
        period=period,
        **props,
    )


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
    seal_interval: Duration,
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
    seal_seconds = seal_interval.to_seconds()
    if not 60 <= seal_seconds <= 86_400 or seal_seconds % 60:
        fail("seal_interval", "must be whole minutes between 1 minute and 1 day")
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


def _validate_prop_types(**props: Any) -> None:
    """Wrong-typed props (``recorder_timeout=30``) get the documented ValueError, not an
    AttributeError from deep inside the construct. Unresolved tokens pass."""
    expected: dict[str, tuple[str, Any]] = {
        "max_receive_count": ("a whole number", _is_int),
        "batch_size": ("a whole number", _is_int),
        "max_concurrency": ("a whole number", _is_int),
        "max_batching_window": ("a Duration (e.g. Duration.seconds(5))", _is_duration),
        "recorder_timeout": ("a Duration (e.g. Duration.seconds(30))", _is_duration),
        "oldest_message_age_alarm": ("a Duration (e.g. Duration.minutes(15))", _is_duration),
        # A str is a Sequence too: _validate_props says it must be a list.
        "event_types": ("a list of event type names", lambda v: isinstance(v, Sequence)),
        "encryption_key": ("a kms.IKey", lambda v: hasattr(v, "key_arn")),
        "removal_policy": ("a RemovalPolicy", lambda v: isinstance(v, RemovalPolicy)),
        "log_retention": ("a logs.RetentionDays", lambda v: isinstance(v, logs.RetentionDays)),
        "alarm_action": ("a cloudwatch.IAlarmAction", lambda v: hasattr(v, "bind")),
        "dashboard": ("True or False", lambda v: isinstance(v, bool)),
        "seal_interval": ("a Duration (e.g. Duration.minutes(5))", _is_duration),
        "subject_in_clear": ("True or False", lambda v: isinstance(v, bool)),
        "event_type_index": ("True or False", lambda v: isinstance(v, bool)),
    }
    for name, (kind, accepts) in expected.items():
        value = props[name]
        optional = name in _OPTIONAL_PROPS
        if (value is None and optional) or accepts(value) or _is_token(value):
            continue
        raise ValueError(f"AuditPipeline {name}: must be {kind}, not {type(value).__name__}")


_OPTIONAL_PROPS = frozenset(
    {
        "max_batching_window",
        "recorder_timeout",
        "oldest_message_age_alarm",
        "encryption_key",
        "alarm_action",
        "seal_interval",
    }
)


def _is_token(value: object) -> bool:
    # Only strings and numbers can be tokens; jsii cannot pass other Python objects.
    return isinstance(value, str | int | float) and Token.is_unresolved(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_duration(value: object) -> bool:
    return isinstance(value, Duration)


_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_ORGANIZATION_ID = re.compile(r"o-[a-z0-9]{10,32}")


def _validate_publishers(accounts: Sequence[str], organization_id: str | None) -> None:
    def fail(field: str, rule: str) -> None:
        raise ValueError(f"AuditPipeline allow_publishers {field}: {rule}")

    if isinstance(accounts, str):
        fail("accounts", "must be a list of account ids, not one string")
    if not accounts and organization_id is None:
        fail("accounts", "give accounts, an organization_id, or both")
    for account in accounts:
        if not Token.is_unresolved(account) and not (
            isinstance(account, str) and _ACCOUNT_ID.fullmatch(account)
        ):
            fail("accounts", f"each must be a 12-digit AWS account id, not {account!r}")
    if (
        organization_id is not None
        and not Token.is_unresolved(organization_id)
        and not (isinstance(organization_id, str) and _ORGANIZATION_ID.fullmatch(organization_id))
    ):
        fail("organization_id", f"must look like o-abc123def4, not {organization_id!r}")
