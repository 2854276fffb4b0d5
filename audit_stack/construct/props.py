"""``AuditPipelineProps``: AuditPipeline's props as a typed dictionary, for ``AuditStack``.

Each key is a keyword argument of ``AuditPipeline`` with the same type (a test keeps the two
equal); defaults and rules are the construct's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3

from audit_stack.construct.pipeline import EventType

__all__ = ["AuditPipelineProps"]


class AuditPipelineProps(TypedDict, total=False):
    """Optional props of ``AuditPipeline`` (README "Props")."""

    max_receive_count: int
    batch_size: int
    max_batching_window: Duration | None
    max_concurrency: int
    recorder_timeout: Duration | None
    event_types: Sequence[str | EventType]
    encryption_key: kms.IKey | None
    removal_policy: RemovalPolicy
    log_retention: logs.RetentionDays
    oldest_message_age_alarm: Duration | None
    alarm_action: cloudwatch.IAlarmAction | None
    dashboard: bool
    seal_interval: Duration | None
    subject_in_clear: bool
    event_type_index: bool
    event_type_index_shards: int
    anchor_bucket: s3.IBucket | None
    anchor_retention: Duration | None
    retention: Duration | None
