"""How the pipeline is watched: its metrics (``PipelineMetrics``), its alarms, its dashboard, and
the rules that see changes to the audit log's controls. The alarms and the dashboard take a
``PipelineMetrics``, never the pipeline: this module does not import ``pipeline``.

The custom metrics are the ones the handlers emit with Powertools (names, namespace and
``service`` dimension from the data contract); a test runs the handlers and checks that every
alarm watches a metric they actually emit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Unpack

from aws_cdk import Annotations, Duration, Names, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from audit_stack.construct.metric_options import MetricOptions, with_statistic
from audit_stack.construct.sealing import HEARTBEAT
from audit_stack.lambda_code import contract

__all__ = [
    "ControlWatch",
    "PipelineMetrics",
    "WatchedResources",
    "create_alarms",
    "create_dashboard",
    "custom_metric",
    "queue_depth",
    "rule_triggers",
]

CLOUDTRAIL_API_CALL = "AWS API Call via CloudTrail"
# Regions where IAM's CloudTrail events reach EventBridge: IAM is global and its management
# events are delivered in us-east-1 only.
IAM_EVENTS_REGION = "us-east-1"

# CloudTrail management events that weaken the audit log's controls, per service (see
# docs/INTEGRITY.md, layer 3). Lambda's event names carry an API version suffix
# (UpdateFunctionCode20150331v2), so they are matched by prefix.
DYNAMODB_CONTROL_EVENTS = (
    "UpdateTable",
    "DeleteTable",
    "UpdateContinuousBackups",
    "UpdateTimeToLive",
    "PutResourcePolicy",
    "DeleteResourcePolicy",
    "RestoreTableToPointInTime",
    "RestoreTableFromBackup",
    "ImportTable",
    "DeleteBackup",
    "UpdateKinesisStreamingDestination",
    "DisableKinesisStreamingDestination",
)
SQS_CONTROL_EVENTS = (
    "SetQueueAttributes",
    "AddPermission",
    "RemovePermission",
    "DeleteQueue",
    "PurgeQueue",
    "StartMessageMoveTask",
)
SNS_CONTROL_EVENTS = (
    "SetTopicAttributes",
    "AddPermission",
    "RemovePermission",
    "DeleteTopic",
    "Subscribe",
    "ConfirmSubscription",
    "Unsubscribe",
    "SetSubscriptionAttributes",
    "PutDataProtectionPolicy",
)
LAMBDA_CONTROL_EVENTS = (
    "UpdateFunctionCode",
    "UpdateFunctionConfiguration",
    "DeleteFunction",
    "AddPermission",
    "RemovePermission",
    "CreateFunctionUrlConfig",
    "UpdateFunctionUrlConfig",
    "PutFunctionConcurrency",
    "DeleteFunctionConcurrency",
    "PutFunctionEventInvokeConfig",
    "UpdateFunctionEventInvokeConfig",
    "CreateAlias",
    "UpdateAlias",
    "PutFunctionCodeSigningConfig",
    "DeleteFunctionCodeSigningConfig",
    "CreateEventSourceMapping",
    "UpdateEventSourceMapping",
    "DeleteEventSourceMapping",
)
# Any function, new or old, given one of the writer roles.
LAMBDA_ROLE_EVENTS = ("CreateFunction", "UpdateFunctionConfiguration")
LAMBDA_MAPPING_EVENTS = ("UpdateEventSourceMapping", "DeleteEventSourceMapping")
IAM_ROLE_EVENTS = (
    "UpdateAssumeRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "DeleteRole",
)
KMS_CONTROL_EVENTS = (
    "PutKeyPolicy",
    "ScheduleKeyDeletion",
    "DisableKey",
    "CreateGrant",
)
SECRET_CONTROL_EVENTS = (
    "PutSecretValue",
    "UpdateSecret",
    "PutResourcePolicy",
    "DeleteResourcePolicy",
    "DeleteSecret",
    "RotateSecret",
    "UpdateSecretVersionStage",
)
EVENTS_RULE_EVENTS = ("DisableRule", "DeleteRule", "PutRule", "RemoveTargets", "PutTargets")
ALARM_EVENTS = ("DisableAlarmActions", "DeleteAlarms", "PutMetricAlarm", "SetAlarmState")
CLOUDTRAIL_EVENTS = (
    "StopLogging",
    "DeleteTrail",
    "PutEventSelectors",
    "UpdateTrail",
    "PutInsightSelectors",
)


def custom_metric(name: str, props: dict[str, Any]) -> cloudwatch.Metric:
    """A metric the handlers emit (Sum over 5 minutes unless ``props`` say otherwise)."""
    return cloudwatch.Metric(
        **{
            "namespace": contract.METRICS_NAMESPACE,
            "metric_name": name,
            "dimensions_map": {"service": contract.SERVICE_NAME},
            "statistic": "Sum",
            "period": Duration.minutes(5),
            **props,
        }
    )


def queue_depth(queue: sqs.IQueue, label: str, props: dict[str, Any]) -> cloudwatch.IMetric:
    """Messages in ``queue``, visible or in flight (Maximum of each, summed)."""
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


def rule_triggers(rule: events.IRule, props: dict[str, Any]) -> cloudwatch.Metric:
    """How often ``rule`` matched (EventBridge TriggeredRules, Sum)."""
    return cloudwatch.Metric(
        **{
            "namespace": "AWS/Events",
            "metric_name": "TriggeredRules",
            "dimensions_map": {"RuleName": rule.rule_name},
            "statistic": "Sum",
            "period": Duration.minutes(5),
            **props,
        }
    )


@dataclass(frozen=True)
class WatchedResources:
    """What the control-change rules watch: the pipeline's resources, by construct."""

    tables: Sequence[dynamodb.ITable]
    queues: Sequence[sqs.IQueue]
    topic: sns.ITopic
    functions: Sequence[lambda_.IFunction]
    writer_roles: Sequence[iam.IRole]
    event_source_mapping_ids: Sequence[str]
    keys: Sequence[kms.IKey]
    secrets: Sequence[secretsmanager.ISecret]


class ControlWatch:
    """The rules that match CloudTrail's record of any change that weakens the log's controls,
    whatever form the caller names the resource by (name, ARN, partial ARN, qualified ARN).

    A rule per watched resource (or small group), because an event pattern is limited to 2,048
    characters (docs/INTEGRITY.md). The rules and the alarms have names fixed at synthesis,
    sharing one prefix: the rules watch each other (a rule cannot see its own DisableRule, it
    is off when the event arrives) and the alarms, by prefix, without a reference cycle.
    """

    def __init__(self, scope: Construct, watched: WatchedResources) -> None:
        self._scope = scope
        self.prefix = Names.unique_resource_name(scope, max_length=40, separator="-")
        self.rules: dict[str, events.Rule] = {}
        self._targets: list[events.IRuleTarget] = []
        # Every rule, by name or ARN (".../rule/NAME" or ".../rule/BUS/NAME").
        rules = [{"prefix": self.prefix}, {"wildcard": f"*/{self.prefix}*"}]
        watch_rules = _clause(
            "events.amazonaws.com", EVENTS_RULE_EVENTS, {"name": rules, "rule": rules}
        )
        for index, table in enumerate(watched.tables):
            self._add(f"Table{index}", "a table", [_table_clause(table)])
        self._add(
            "Delivery",
            "queues, topic and subscriptions",
            [_queue_clause(watched.queues), _topic_clause(watched.topic)],
        )
        for index, function in enumerate(watched.functions):
            self._add(f"Function{index}", "a function", [_function_clause(function)])
        self._add(
            "Roles",
            "writers' roles, the event source mapping, and these rules",
            [*_role_clauses(watched), watch_rules],
        )
        self._add(
            "Keys",
            "keys and the pseudonym secret",
            [_key_clause(watched.keys), *_secret_clauses(watched.secrets)],
        )
        self._add(
            "Watchers",
            "rules, alarms, and CloudTrail",
            [
                watch_rules,
                _clause(
                    "monitoring.amazonaws.com",
                    ALARM_EVENTS,
                    {
                        "alarmName": [{"prefix": self.prefix}],
                        "alarmNames": [{"prefix": self.prefix}],
                    },
                ),
                _clause("cloudtrail.amazonaws.com", CLOUDTRAIL_EVENTS, None),
            ],
        )
        region = Stack.of(scope).region
        if not Token.is_unresolved(region) and region != IAM_EVENTS_REGION:
            Annotations.of(scope).add_info(
                "IAM's CloudTrail events reach EventBridge in us-east-1 only: the Roles rule's "
                f"IAM clause (writer roles' trust and policies) matches nothing in {region}; "
                "docs/INTEGRITY.md shows the same pattern as a rule in us-east-1."
            )

    def _add(self, kind: str, what: str, clauses: list[dict[str, Any]]) -> events.Rule:
        rule = events.Rule(
            self._scope,
            f"ControlChange{kind}Rule",
            rule_name=self.rule_name(kind),
            description=f"Changes to the audit log's {what} (CloudTrail management events; "
            "needs a trail in this region)",
            event_pattern=events.EventPattern(
                detail_type=[CLOUDTRAIL_API_CALL], detail={"$or": clauses}
            ),
        )
        for target in self._targets:
            rule.add_target(target)
        self.rules[kind] = rule
        return rule

    def rule_name(self, kind: str) -> str:
        return f"{self.prefix}-{kind}"

    def alarm_name(self, construct_id: str) -> str:
        """A fixed name under the rules' prefix, so the Watchers rule matches every alarm."""
        return f"{self.prefix}-{construct_id}"

    def watch_alarm_topic(self, topic: sns.ITopic, key: kms.IKey | None) -> None:
        """The alarm topic (unsubscribing the on-call, its policy) and its key; and every rule
        also sends what it matched to the topic directly (the alarm is a second path)."""
        clauses = [_topic_clause(topic)]
        if key is not None:
            clauses.append(_key_clause([key]))
        target = targets.SnsTopic(topic)
        for rule in self.rules.values():
            rule.add_target(target)
        self._targets.append(target)
        self._add("AlarmTopic", "alarm topic and its key", clauses)

    def metric(self, props: dict[str, Any]) -> cloudwatch.IMetric:
        """How often any of the rules matched (EventBridge TriggeredRules, summed)."""
        period = props.pop("period", Duration.minutes(5))
        # By the fixed names, including the alarm topic's rule that AuditStack adds later: a
        # Ref to a rule from an alarm the rule watches would be a cycle.
        kinds = [*self.rules, *(kind for kind in _LATER_KINDS if kind not in self.rules)]
        using: dict[str, cloudwatch.IMetric] = {
            f"rule{index}": _triggers(self.rule_name(kind), period)
            for index, kind in enumerate(kinds)
        }
        return cloudwatch.MathExpression(
            expression=" + ".join(f"FILL({name}, 0)" for name in using),
            using_metrics=using,
            label="Control changes",
            period=period,
            **props,
        )


# Rules added after the pipeline is built (AuditStack's alarm topic).
_LATER_KINDS = ("AlarmTopic",)


def _clause(source: str, names: Sequence[str], parameters: dict[str, Any] | None) -> dict[str, Any]:
    clause: dict[str, Any] = {
        "eventSource": [source],
        # Lambda's event names carry an API version (UpdateFunctionCode20150331v2).
        "eventName": [{"prefix": name} for name in names]
        if source == "lambda.amazonaws.com"
        else list(names),
    }
    if parameters is None:
        return clause
    # Any one of the parameters naming a watched resource is enough.
    return {**clause, "$or": [{"requestParameters": {k: v}} for k, v in parameters.items()]}


def _table_clause(table: dynamodb.ITable) -> dict[str, Any]:
    name = table.table_name
    # The name, the ARN (".../table/NAME"), and ARNs under it (index, stream, backup, export).
    forms = [{"wildcard": f"*{name}"}, {"wildcard": f"*table/{name}/*"}]
    return _clause(
        "dynamodb.amazonaws.com",
        DYNAMODB_CONTROL_EVENTS,
        {
            "tableName": forms,
            "resourceArn": forms,
            "sourceTableName": forms,
            "sourceTableArn": forms,
            "targetTableName": forms,
            "backupArn": forms,
            "tableCreationParameters": {"tableName": forms},
        },
    )


def _queue_clause(queues: Sequence[sqs.IQueue]) -> dict[str, Any]:
    # A queue URL in any endpoint form ends with "/ACCOUNT/NAME"; an ARN with ":NAME".
    urls = [{"suffix": f"/{queue.queue_name}"} for queue in queues]
    arns = [{"suffix": f":{queue.queue_name}"} for queue in queues]
    return _clause(
        "sqs.amazonaws.com",
        SQS_CONTROL_EVENTS,
        {"queueUrl": urls, "sourceArn": arns, "destinationArn": arns},
    )


def _topic_clause(topic: sns.ITopic) -> dict[str, Any]:
    arn = topic.topic_arn
    # A subscription's ARN is the topic's followed by ":<id>".
    forms = [arn, {"prefix": f"{arn}:"}]
    return _clause(
        "sns.amazonaws.com",
        SNS_CONTROL_EVENTS,
        {"topicArn": forms, "subscriptionArn": forms, "resourceArn": forms},
    )


def _function_clause(function: lambda_.IFunction) -> dict[str, Any]:
    name = function.function_name
    # NAME, NAME:QUALIFIER, an ARN or a partial ARN (ACCOUNT:function:NAME), qualified or not.
    forms = [name, {"prefix": f"{name}:"}, {"wildcard": f"*function:{name}"}]
    forms.append({"wildcard": f"*function:{name}:*"})
    return _clause(
        "lambda.amazonaws.com",
        LAMBDA_CONTROL_EVENTS,
        {"functionName": forms, "functionArn": forms},
    )


def _role_clauses(watched: WatchedResources) -> list[dict[str, Any]]:
    return [
        # Any function, new or old, given a writer's role could write or sign as it.
        _clause(
            "lambda.amazonaws.com",
            LAMBDA_ROLE_EVENTS,
            {"role": [role.role_arn for role in watched.writer_roles]},
        ),
        _clause(
            "lambda.amazonaws.com",
            LAMBDA_MAPPING_EVENTS,
            {"uUID": list(watched.event_source_mapping_ids)},
        ),
        _clause(
            "iam.amazonaws.com",
            IAM_ROLE_EVENTS,
            {"roleName": [role.role_name for role in watched.writer_roles]},
        ),
    ]


def _key_clause(keys: Sequence[kms.IKey]) -> dict[str, Any]:
    # A key id, or an ARN ending with "key/ID".
    forms = [{"wildcard": f"*{key.key_id}"} for key in keys]
    return _clause("kms.amazonaws.com", KMS_CONTROL_EVENTS, {"keyId": forms})


def _secret_clauses(secrets: Sequence[secretsmanager.ISecret]) -> list[dict[str, Any]]:
    if not secrets:
        return []
    forms: list[Any] = []
    for secret in secrets:
        # NAME, NAME-SUFFIX, the full ARN or a partial one (without "-SUFFIX").
        forms += [{"prefix": secret.secret_name}, {"wildcard": f"*:secret:{secret.secret_name}*"}]
    return [_clause("secretsmanager.amazonaws.com", SECRET_CONTROL_EVENTS, {"secretId": forms})]


def _triggers(rule_name: str, period: Duration) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/Events",
        metric_name="TriggeredRules",
        dimensions_map={"RuleName": rule_name},
        statistic="Sum",
        period=period,
    )


class PipelineMetrics:
    """The pipeline's metrics (``AuditPipeline.metric_*`` return these), made from its resources;
    the alarms and the dashboard take this, not the pipeline, so that this module never imports
    ``pipeline``."""

    def __init__(
        self,
        *,
        topic: sns.ITopic,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        subscription_dead_letter_queue: sqs.IQueue,
        recorder: lambda_.IFunction,
        publisher: lambda_.IFunction | None,
        sealer: lambda_.IFunction,
        control_watch: ControlWatch,
    ) -> None:
        self._topic = topic
        self._queue = queue
        self._dead_letter_queue = dead_letter_queue
        self._subscription_dead_letter_queue = subscription_dead_letter_queue
        self._recorder = recorder
        self.publisher = publisher
        """The deleteAccount function; None without ``AccountDeleted`` in the catalogue."""
        self._sealer = sealer
        self._control_watch = control_watch

    def metric_dead_letter_queue_depth(self, **props: Unpack[MetricOptions]) -> cloudwatch.IMetric:
        return queue_depth(self._dead_letter_queue, "DLQ messages", dict(props))

    def metric_subscription_dead_letter_queue_depth(
        self, **props: Unpack[MetricOptions]
    ) -> cloudwatch.IMetric:
        return queue_depth(self._subscription_dead_letter_queue, "Undelivered", dict(props))

    def metric_publisher_errors(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        if self.publisher is None:
            raise ValueError(
                "metric_publisher_errors: this pipeline has no deleteAccount function "
                "(AccountDeleted is not in its event_types)"
            )
        return self.publisher.metric_errors(**with_statistic("Sum", props))

    def metric_sealer_errors(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        return self._sealer.metric_errors(**with_statistic("Sum", props))

    def metric_sealer_iterator_age(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """How old (milliseconds) the newest record of the table's stream was when the sealer
        took it (Lambda's IteratorAge for a stream event source): records not sealed yet."""
        return self._sealer.metric("IteratorAge", **with_statistic("Maximum", props))

    def metric_tampered_records(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        return custom_metric(contract.METRIC_TAMPERED_RECORDS, dict(props))

    def metric_control_changes(self, **props: Unpack[MetricOptions]) -> cloudwatch.IMetric:
        return self._control_watch.metric(dict(props))

    def metric_notifications_filtered_out(
        self, **props: Unpack[MetricOptions]
    ) -> cloudwatch.Metric:
        return self._topic.metric_number_of_notifications_filtered_out(
            **with_statistic("Sum", props)
        )

    def metric_unaccounted_events(self, **props: Unpack[MetricOptions]) -> cloudwatch.IMetric:
        """published - (filtered out + failed + recorded + duplicates + poison): above zero,
        some events entered the topic and neither reached the table nor were refused visibly."""
        options: dict[str, Any] = dict(props)
        period = options.pop("period", Duration.minutes(5))
        sums: MetricOptions = {"statistic": "Sum", "period": period}
        using: dict[str, cloudwatch.IMetric] = {
            "published": self._topic.metric_number_of_messages_published(**sums),
            "filtered": self._topic.metric_number_of_notifications_filtered_out(**sums),
            "failed": self._topic.metric_number_of_notifications_failed(**sums),
            "recorded": self.metric_events_recorded(**sums),
            "duplicates": self.metric_duplicates_skipped(**sums),
            "poison": self.metric_poison_messages(**sums),
        }
        return cloudwatch.MathExpression(
            expression="FILL(published, 0) - (FILL(filtered, 0) + FILL(failed, 0) + "
            "FILL(recorded, 0) + FILL(duplicates, 0) + FILL(poison, 0))",
            using_metrics=using,
            label="Unaccounted events",
            period=period,
            **options,
        )

    def metric_digests_written(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        return custom_metric(contract.METRIC_DIGESTS_WRITTEN, dict(props))

    def metric_oldest_message_age(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        return self._queue.metric_approximate_age_of_oldest_message(
            **with_statistic("Maximum", props)
        )

    def metric_recorder_errors(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        return self._recorder.metric_errors(**with_statistic("Sum", props))

    def metric_recorder_throttles(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        return self._recorder.metric_throttles(**with_statistic("Sum", props))

    def metric_events_recorded(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        return custom_metric(contract.METRIC_EVENTS_RECORDED, dict(props))

    def metric_duplicates_skipped(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        return custom_metric(contract.METRIC_DUPLICATES_SKIPPED, dict(props))

    def metric_poison_messages(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        return custom_metric(contract.METRIC_POISON_MESSAGES, dict(props))

    def metric_unverified_messages(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        return custom_metric(contract.METRIC_UNVERIFIED_MESSAGES, dict(props))


@dataclass(frozen=True)
class _AlarmSpec:
    construct_id: str
    metric: cloudwatch.IMetric
    threshold: float
    description: str
    comparison: cloudwatch.ComparisonOperator = (
        cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
    )
    missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING
    evaluation_periods: int = 1


def create_alarms(
    scope: Construct,
    pipeline: PipelineMetrics,
    *,
    oldest_message_age: Duration,
    seal_interval: Duration,
    action: cloudwatch.IAlarmAction | None,
    name: Callable[[str], str],
) -> tuple[cloudwatch.Alarm, ...]:
    """The pipeline's alarms (README "Alarms"), each sent to ``action`` and back to OK."""
    one_minute, five_minutes = Duration.minutes(1), Duration.minutes(5)
    specs = (
        _AlarmSpec(
            "DeadLetterQueueNotEmptyAlarm",
            pipeline.metric_dead_letter_queue_depth(period=one_minute),
            1,
            "Audit events failed max_receive_count times and wait in the DLQ (visible or "
            "being read): inspect them, fix the cause, then redrive.",
        ),
        _AlarmSpec(
            "SubscriptionDeadLetterQueueNotEmptyAlarm",
            pipeline.metric_subscription_dead_letter_queue_depth(period=one_minute),
            1,
            "SNS could not deliver audit events to the queue (e.g. a key or queue policy "
            "changed); they wait in the subscription's dead-letter queue.",
        ),
        *(
            # Only a pipeline whose catalogue has AccountDeleted has the deleteAccount function.
            [
                _AlarmSpec(
                    "PublisherErrorsAlarm",
                    pipeline.metric_publisher_errors(period=five_minutes),
                    1,
                    "The publisher function failed: callers' audit events may not be published.",
                )
            ]
            if pipeline.publisher is not None
            else []
        ),
        _AlarmSpec(
            "SealerErrorsAlarm",
            pipeline.metric_sealer_errors(period=five_minutes),
            1,
            "The sealer function failed; records stay unsealed until a run succeeds.",
        ),
        _AlarmSpec(
            "SealingStalledAlarm",
            pipeline.metric_sealer_iterator_age(period=one_minute),
            (seal_interval.to_seconds() * 2 + 300) * 1000,
            "Records have waited more than two seal intervals to be sealed (the table's "
            "stream into the sealer is behind; DynamoDB keeps a stream record 24 hours).",
        ),
        _AlarmSpec(
            "TamperedRecordsAlarm",
            pipeline.metric_tampered_records(period=five_minutes),
            1,
            "The sealer found a recorded audit event altered or removed before sealing.",
        ),
        _AlarmSpec(
            "UnverifiedMessagesAlarm",
            pipeline.metric_unverified_messages(period=five_minutes),
            1,
            "The recorder refused a message that SNS did not sign for its topic (a direct "
            "invoke or a queue write with a forged envelope); it goes to the DLQ.",
        ),
        _AlarmSpec(
            "ControlChangedAlarm",
            pipeline.metric_control_changes(period=five_minutes),
            1,
            "Someone changed the audit log's controls: a table, queue, topic or "
            "subscription, function, writer role, key, secret, these rules, the alarms or "
            "CloudTrail (docs/INTEGRITY.md, layer 3).",
        ),
        _AlarmSpec(
            "NotificationsFilteredOutAlarm",
            pipeline.metric_notifications_filtered_out(period=five_minutes),
            1,
            "An event was published whose type the queue's filter policy does not accept "
            "(an unknown type, or a changed filter policy): it was not recorded.",
        ),
        _AlarmSpec(
            "UnaccountedEventsAlarm",
            pipeline.metric_unaccounted_events(period=five_minutes),
            1,
            "More events entered the topic than were recorded, filtered out, failed or "
            "rejected, for 15 minutes: events are being lost or taken from the queue.",
            # A batch recorded just after a period ends shows as +n then -n: three periods in
            # a row rule that out, and cover the recorder's retries within the visibility
            # timeout.
            evaluation_periods=3,
        ),
        _AlarmSpec(
            "DigestsStoppedAlarm",
            pipeline.metric_digests_written(period=_heartbeat_period(seal_interval)),
            1,
            "No digest was written for longer than the heartbeat: the sealer is not running "
            "(or its schedule was changed), so nothing new is sealed or anchored.",
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            # No data at all means no digest at all.
            missing_data=cloudwatch.TreatMissingData.BREACHING,
        ),
        _AlarmSpec(
            "OldestMessageAgeAlarm",
            pipeline.metric_oldest_message_age(period=one_minute),
            oldest_message_age.to_seconds(),
            "Audit events are waiting too long in the queue: the recorder is failing, "
            "throttled or too slow.",
        ),
        _AlarmSpec(
            "RecorderErrorsAlarm",
            pipeline.metric_recorder_errors(period=five_minutes),
            1,
            "The recorder function failed (whole batches return to the queue).",
        ),
        _AlarmSpec(
            "RecorderThrottlesAlarm",
            pipeline.metric_recorder_throttles(period=five_minutes),
            1,
            "The recorder function was throttled (account or reserved concurrency).",
        ),
    )
    alarms = []
    for spec in specs:
        alarm = cloudwatch.Alarm(
            scope,
            spec.construct_id,
            # Fixed names under the control-change rules' prefix: the rules watch them by it.
            alarm_name=name(spec.construct_id),
            metric=spec.metric,
            threshold=spec.threshold,
            evaluation_periods=spec.evaluation_periods,
            comparison_operator=spec.comparison,
            treat_missing_data=spec.missing_data,
            alarm_description=spec.description,
        )
        if action is not None:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        alarms.append(alarm)
    return tuple(alarms)


def _heartbeat_period(seal_interval: Duration) -> Duration:
    """The longest a healthy sealer goes without a digest (a heartbeat, or one run after it),
    within CloudWatch's longest alarm period of a day."""
    heartbeat, interval = HEARTBEAT.to_seconds(), seal_interval.to_seconds()
    return Duration.seconds(min(max(heartbeat, interval) + interval, 86_400))


def create_dashboard(
    scope: Construct, pipeline: PipelineMetrics, alarms: Sequence[cloudwatch.IAlarm]
) -> cloudwatch.Dashboard:
    """A CloudWatch dashboard of the pipeline's events, queues, recorder and alarms."""
    board = cloudwatch.Dashboard(scope, "Dashboard")
    board.add_widgets(
        cloudwatch.GraphWidget(
            title="Audit events",
            left=[
                pipeline.metric_events_recorded(),
                pipeline.metric_duplicates_skipped(),
                pipeline.metric_poison_messages(),
            ],
        ),
        cloudwatch.GraphWidget(
            title="Queues",
            left=[pipeline.metric_dead_letter_queue_depth()],
            right=[pipeline.metric_oldest_message_age()],
        ),
        cloudwatch.GraphWidget(
            title="Recorder",
            left=[pipeline.metric_recorder_errors(), pipeline.metric_recorder_throttles()],
        ),
    )
    board.add_widgets(cloudwatch.AlarmStatusWidget(alarms=list(alarms), title="Alarms", width=24))
    return board
