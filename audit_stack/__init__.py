"""A serverless audit pipeline for AWS CDK: publish audit events, record each exactly once.

``AuditPipeline`` and ``AuditStack`` load aws-cdk-lib on first use, so the local emulator and the
operator CLI (which only read synthesized templates) start without it; ``AuditPublisher`` (the
producer client) needs only boto3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audit_stack.construct import AuditPipeline
    from audit_stack.publisher import AuditPublisher, EventType
    from audit_stack.stack import AuditStack

__all__ = ["AuditPipeline", "AuditPublisher", "AuditStack", "EventType"]


def __getattr__(name: str) -> Any:
    if name == "AuditPipeline":
        from audit_stack.construct import AuditPipeline

        return AuditPipeline
    if name == "AuditPublisher":
        from audit_stack.publisher import AuditPublisher

        return AuditPublisher
    if name == "EventType":
        # aws_cdk-free: producers (AuditPublisher) and the construct share it.
        from audit_stack.publisher import EventType

        return EventType
    if name == "AuditStack":
        from audit_stack.stack import AuditStack

        return AuditStack
    raise AttributeError(f"module 'audit_stack' has no attribute {name!r}")
