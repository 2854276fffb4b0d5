"""How the pipeline is watched: its metrics, its alarms, its dashboard, and the rule that sees
changes to the audit log's controls.

The custom metrics are the ones the handlers emit with Powertools (names, namespace and
``service`` dimension from the data contract); a test runs the handlers and checks that every
alarm watches a metric they actually emit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from audit_stack.lambda_code import contract

if TYPE_CHECKING:
    from audit_stack.construct.pipeline import AuditPipeline

__all__ = [
    "CONTROL_CHANGE_EVENTS",
    "create_alarms",
    "create_dashboard",
    "custom_metric",
    "queue_depth",
    "rule_triggers",
    "watch_control_changes",
]

# CloudTrail management events that weaken the audit log's controls (see docs/INTEGRITY.md).
CONTROL_CHANGE_EVENTS: Sequence[str | dict[str, str]] = (
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


def watch_control_changes(
    scope: Construct,
    *,
    tables: Sequence[dynamodb.ITable],
    queues: Sequence[sqs.IQueue],
    functions: Sequence[lambda_.IFunction],
    signing_key: kms.IKey,
) -> events.Rule:
    """A rule matching CloudTrail's record of any change that weakens the log's controls."""
    return events.Rule(
        scope,
        "ControlChangeRule",
        description="Changes to the audit log's tables, queues, signing key or functions "
        "(CloudTrail management events; needs a trail in this region)",
        event_pattern=events.EventPattern(
            detail_type=["AWS API Call via CloudTrail"],
            detail={
                "eventName": list(CONTROL_CHANGE_EVENTS),
                "$or": [
                    {"requestParameters": {"tableName": [t.table_name for t in tables]}},
                    {"requestParameters": {"resourceArn": [t.table_arn for t in tables]}},
                    {"requestParameters": {"queueUrl": [q.queue_url for q in queues]}},
                    {"requestParameters": {"keyId": [signing_key.key_id, signing_key.key_arn]}},
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


@dataclass(frozen=True)
class _AlarmSpec:
    construct_id: str
    metric: cloudwatch.IMetric
    threshold: float
    description: str


def create_alarms(
    pipeline: AuditPipeline,
    *,
    oldest_message_age: Duration,
    seal_interval: Duration,
    action: cloudwatch.IAlarmAction | None,
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
            if pipeline.publisher_function is not None
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
            pipeline.metric_oldest_seal_notice_age(period=one_minute),
            seal_interval.to_seconds() * 2 + 300,
            "Records have waited more than two seal intervals to be sealed.",
        ),
        _AlarmSpec(
            "TamperedRecordsAlarm",
            pipeline.metric_tampered_records(period=five_minutes),
            1,
            "The sealer found a recorded audit event altered or removed before sealing.",
        ),
        _AlarmSpec(
            "ControlChangedAlarm",
            pipeline.metric_control_changes(period=five_minutes),
            1,
            "Someone changed the audit log's table, queue, signing key or function "
            "settings (resource policy, PITR, deletion protection, code...).",
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
            pipeline,
            spec.construct_id,
            metric=spec.metric,
            threshold=spec.threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=spec.description,
        )
        if action is not None:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        alarms.append(alarm)
    return tuple(alarms)


def create_dashboard(
    pipeline: AuditPipeline, alarms: Sequence[cloudwatch.IAlarm]
) -> cloudwatch.Dashboard:
    """A CloudWatch dashboard of the pipeline's events, queues, recorder and alarms."""
    board = cloudwatch.Dashboard(pipeline, "Dashboard")
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
