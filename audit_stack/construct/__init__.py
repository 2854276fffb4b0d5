"""The ``AuditPipeline`` construct (aws-cdk-lib) and the CDK-side helpers it is built from."""

from __future__ import annotations

from audit_stack.construct.pipeline import AuditPipeline
from audit_stack.construct.props import AuditPipelineProps

__all__ = ["AuditPipeline", "AuditPipelineProps"]
