"""A serverless audit pipeline for AWS CDK: publish audit events, record each exactly once."""

from audit_stack.pipeline import AuditPipeline
from audit_stack.stack import AuditStack

__all__ = ["AuditPipeline", "AuditStack"]
