"""The metric names tie the handlers to the alarms: what the construct watches is what the
recorder and the sealer actually emit, and both spell it as the data contract does.

Renaming a metric in a handler, in the construct or in the contract alone fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import aws_cdk as cdk
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events import contract
from audit_stack import AuditPipeline
from tests.cdk_app import new_app

from .builders import account_deleted, record_for, sqs_event, sqs_record
from .conftest import Sealing

_CONTRACT_METRICS = {*contract.RECORDER_METRICS, *contract.SEALER_METRICS}


def _emitted_metric_names(stdout: str) -> set[str]:
    """Every metric name declared in the CloudWatch EMF lines Powertools printed."""
    names: set[str] = set()
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            names.update(metric["Name"] for metric in directive["Metrics"])
    return names


def _watched_metrics(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The metric of each alarm: its own, or each of a math expression's."""
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        properties = resource["Properties"]
        if "MetricName" in properties:
            yield properties
        for query in properties.get("Metrics", []):
            if "MetricStat" in query:
                yield query["MetricStat"]["Metric"]


@pytest.fixture
def emitted_metric_names(
    sealing: Sealing,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> set[str]:
    """What one recorder batch (recorded, duplicate, poison) and one sealer run emit."""
    capsys.readouterr()
    event = account_deleted()
    recorder.handler(
        sqs_event(record_for(event), record_for(event), sqs_record("not json")), lambda_context
    )
    sealer.handler({"trigger": "schedule"}, lambda_context)
    return _emitted_metric_names(capsys.readouterr().out)


def test_the_handlers_emit_exactly_the_contracts_metrics(emitted_metric_names: set[str]) -> None:
    assert emitted_metric_names == _CONTRACT_METRICS


def test_every_alarm_on_a_custom_metric_watches_one_the_handlers_emit(
    template_json: dict[str, Any], emitted_metric_names: set[str]
) -> None:
    custom = [
        metric
        for metric in _watched_metrics(template_json)
        if metric["Namespace"] == contract.METRICS_NAMESPACE
    ]

    assert custom, "no alarm watches a custom metric: this test would prove nothing"
    assert {metric["MetricName"] for metric in custom} <= emitted_metric_names
    for metric in custom:
        assert metric["Dimensions"] == [{"Name": "service", "Value": contract.SERVICE_NAME}]


def test_the_functions_emit_into_the_namespace_and_service_the_alarms_watch(
    template_json: dict[str, Any],
) -> None:
    functions = [
        resource["Properties"]["Environment"]["Variables"]
        for resource in template_json["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
        and "POWERTOOLS_METRICS_NAMESPACE" in resource["Properties"]["Environment"]["Variables"]
    ]

    assert len(functions) == 3  # publisher, recorder, sealer
    for variables in functions:
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == contract.METRICS_NAMESPACE
        assert variables["POWERTOOLS_SERVICE_NAME"] == contract.SERVICE_NAME


@pytest.mark.synth  # an in-process CDK app: `make test`, not `make unit`
def test_every_custom_metric_method_names_a_metric_the_handlers_emit(
    emitted_metric_names: set[str],
) -> None:
    pipeline = AuditPipeline(cdk.Stack(new_app(), "Metrics"), "Audit")
    metrics = [
        pipeline.metric_events_recorded(),
        pipeline.metric_duplicates_skipped(),
        pipeline.metric_poison_messages(),
        pipeline.metric_tampered_records(),
    ]

    for metric in metrics:
        assert metric.namespace == contract.METRICS_NAMESPACE
        assert metric.dimensions == {"service": contract.SERVICE_NAME}
    assert {metric.metric_name for metric in metrics} <= emitted_metric_names
