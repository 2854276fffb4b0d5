"""The options every ``AuditPipeline.metric_*`` method takes: aws-cdk-lib's
``cloudwatch.MetricOptions`` fields, typed, so that an editor completes them and mypy checks them
(``pipeline.metric_recorder_errors(period=Duration.minutes(1), statistic="Maximum")``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

__all__ = ["MetricOptions", "with_statistic"]


class MetricOptions(TypedDict, total=False):
    """``cloudwatch.MetricOptions``' fields; each method documents its own defaults."""

    account: str
    color: str
    dimensions_map: Mapping[str, str]
    label: str
    period: Duration
    region: str
    statistic: str
    unit: cloudwatch.Unit


def with_statistic(statistic: str, options: MetricOptions) -> MetricOptions:
    """``options`` with a default ``statistic`` (the caller's wins)."""
    return {"statistic": statistic, **options}
