"""The AuditPipeline construct: SNS topic -> SQS queue (+DLQ) -> recorder Lambda -> DynamoDB.

Every prop has a production-ready default, so ``AuditPipeline(self, "Audit")`` alone is a sound
deployment. The defaults are listed, one row each, in the README's defaults table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Token, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from audit_stack import discovery
from audit_stack.encryption import (
    PUBLISHER_KEY_ACTIONS,
    QueueSubscription,
    require_key_statement,
    sns_delivery_statement,
)
from audit_stack.lambda_code import lambda_code_dir
from audit_stack.marking import PipelineMarker

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
EVENT_TYPE_INDEX = "by-event-type"
EVENT_TYPE_ATTRIBUTE = "event_type"

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
        )
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
        )
        super().__init__(scope, construct_id)
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
            QueueSubscription(
                self._queue,
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
        self._table.add_global_secondary_index(
            index_name=EVENT_TYPE_INDEX,
            partition_key=dynamodb.Attribute(
                name=EVENT_TYPE_ATTRIBUTE, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=TABLE_SORT_KEY, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
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
            environment={"TOPIC_ARN": self._topic.topic_arn},
            log_retention=log_retention,
            removal_policy=retain,
        )
        self.grant_publish(self._publisher)

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
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
            log_retention=log_retention,
            removal_policy=retain,
        )
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

        for construct, role in (
            (self._topic, discovery.TOPIC),
            (self._queue, discovery.QUEUE),
            (self._dead_letter_queue, discovery.DEAD_LETTER_QUEUE),
            (self._table, discovery.TABLE),
            (self._publisher, discovery.PUBLISHER),
            (self._recorder, discovery.RECORDER),
        ):
            self._marker.assign(construct, role)

        self._alarms = self._create_alarms(oldest_message_age_alarm, alarm_action)
        if dashboard:
            self._create_dashboard()

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
            self._encryption_key.grant(grantee, *PUBLISHER_KEY_ACTIONS)
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
