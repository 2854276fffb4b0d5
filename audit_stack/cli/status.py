"""``audit status``: queue depths, age of the oldest message, alarm states; HEALTHY or not."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from audit_stack import discovery
from audit_stack.cli import render
from audit_stack.cli.errors import EXIT_OK, EXIT_UNHEALTHY
from audit_stack.cli.target import Target

__all__ = ["health_report", "run"]

_ALARM_OPERATORS = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}


def health_report(target: Target) -> dict[str, Any]:
    """The pipeline's health: "status" is HEALTHY unless "problems" lists something."""
    sqs = target.client("sqs")
    queues = {
        "queue": target.resource(discovery.QUEUE),
        "dead_letter_queue": target.resource(discovery.DEAD_LETTER_QUEUE),
    }
    depths = {role: _depth(sqs, url) for role, url in queues.items()}
    ages = _oldest_message_ages(
        target.client("cloudwatch"), {role: render.queue_name(url) for role, url in queues.items()}
    )
    alarms = _alarms(target)
    problems = []
    dead_letters = sum(depths["dead_letter_queue"].values())
    if dead_letters:
        problems.append(
            f"{dead_letters} message(s) in the dead-letter queue: see why with "
            f"`{target.again('dlq', 'show')}`, fix the cause, then "
            f"`{target.again('dlq', 'redrive')}`"
        )
    for alarm in alarms:
        if alarm["state"] == "ALARM":
            problems.append(f"alarm {alarm['logical_id']} is in ALARM: {alarm['reason']}")
    note = (
        "the local emulator creates the stack's alarms but never evaluates them (it publishes no "
        "metrics): they stay INSUFFICIENT_DATA, health comes from the queues"
        if target.endpoint_url
        else None
    )
    return {
        "stack": target.stack,
        "pipeline": target.pipeline,
        "region": target.region,
        "endpoint_url": target.endpoint_url,
        "status": "UNHEALTHY" if problems else "HEALTHY",
        "problems": problems,
        "queues": {
            role: {
                "name": render.queue_name(url),
                **depths[role],
                "oldest_message_age_seconds": ages.get(role),
            }
            for role, url in queues.items()
        },
        "alarms": alarms,
        "note": note,
    }


def run(target: Target, arguments: argparse.Namespace) -> int:
    report = health_report(target)
    if arguments.output == "json":
        render.print_json(report)
    else:
        _print(target, report)
    return EXIT_OK if report["status"] == "HEALTHY" else EXIT_UNHEALTHY


def _print(target: Target, report: dict[str, Any]) -> None:
    print(f"Stack {target.stack}, pipeline {target.pipeline}, in {target.where}\n")
    rows = []
    for role, queue in report["queues"].items():
        age = queue["oldest_message_age_seconds"]
        rows.append(
            [
                role.replace("_", " "),
                str(queue["visible"]),
                str(queue["in_flight"]),
                str(queue["delayed"]),
                render.duration(age) if age is not None else "no data",
                queue["name"],
            ]
        )
    print(
        render.table(["QUEUE", "VISIBLE", "IN FLIGHT", "DELAYED", "OLDEST MESSAGE", "NAME"], rows)
    )
    print()
    if report["alarms"]:
        alarm_rows = [
            [alarm["logical_id"], alarm["state"], alarm["since"], alarm["condition"]]
            for alarm in report["alarms"]
        ]
        print(render.table(["ALARM", "STATE", "SINCE (UTC)", "CONDITION"], alarm_rows))
    else:
        print("No CloudWatch alarms in the stack.")
    if report["note"]:
        print(f"\nnote: {report['note']}.")
    print(f"\n{report['status']}")
    for problem in report["problems"]:
        print(f"  - {problem}")


def _depth(sqs: Any, url: str) -> dict[str, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {
        "visible": int(attributes["ApproximateNumberOfMessages"]),
        "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
    }


def _oldest_message_ages(cloudwatch: Any, names: dict[str, str]) -> dict[str, float]:
    """ApproximateAgeOfOldestMessage, newest datapoint of the last 15 minutes, per queue role.

    SQS's API has no such attribute: CloudWatch is the only source, a minute or more behind.
    """
    now = datetime.now(UTC)
    roles = list(names)
    response = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": f"q{index}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateAgeOfOldestMessage",
                        "Dimensions": [{"Name": "QueueName", "Value": names[role]}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
            for index, role in enumerate(roles)
        ],
        StartTime=now - timedelta(minutes=15),
        EndTime=now,
        ScanBy="TimestampDescending",
    )
    ages: dict[str, float] = {}
    for result in response["MetricDataResults"]:
        if result.get("Values"):
            ages[roles[int(result["Id"][1:])]] = float(result["Values"][0])
    return ages


def _alarms(target: Target) -> list[dict[str, Any]]:
    """The pipeline's CloudWatch alarms and their states."""
    names = target.alarms
    cloudwatch = target.client("cloudwatch")
    found: list[dict[str, Any]] = []
    ordered = sorted(names)
    for start in range(0, len(ordered), 100):
        response = cloudwatch.describe_alarms(
            AlarmNames=ordered[start : start + 100], AlarmTypes=["MetricAlarm"]
        )
        for alarm in response["MetricAlarms"]:
            found.append(
                {
                    "logical_id": names[alarm["AlarmName"]],
                    "name": alarm["AlarmName"],
                    "state": alarm["StateValue"],
                    "since": render.iso(alarm["StateUpdatedTimestamp"]),
                    "reason": alarm.get("StateReason", ""),
                    "condition": _alarm_condition(alarm),
                }
            )
    return sorted(found, key=lambda alarm: alarm["logical_id"])


def _alarm_condition(alarm: dict[str, Any]) -> str:
    operator = _ALARM_OPERATORS.get(alarm.get("ComparisonOperator", ""), "?")
    threshold = alarm.get("Threshold")
    shown = f"{threshold:g}" if isinstance(threshold, float) else str(threshold)
    return f"{alarm.get('MetricName', 'metric math')} {operator} {shown}"
