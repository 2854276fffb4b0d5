"""The ``AuditPipeline`` construct (aws-cdk-lib), in modules of one job each.

``pipeline`` composes the resources; ``props`` declares each prop once (type, default, meaning,
AuditStack context key); ``validation`` checks them against its table of rules before any child
exists; ``builders`` and ``functions`` build queues, tables and functions with the secure
defaults; ``permissions`` holds the IAM action lists, grants and the one "deny all but" builder;
``monitoring`` the metrics (``PipelineMetrics``), alarms and dashboard; ``sealing`` the digest
chain; ``encryption`` customer-key policies; ``marking`` the marks tooling finds resources by.
"""

from __future__ import annotations

from audit_stack.construct.pipeline import AuditPipeline, EventType
from audit_stack.construct.props import AuditPipelineProps
from audit_stack.construct.validation import PropsError

__all__ = ["AuditPipeline", "AuditPipelineProps", "EventType", "PropsError"]
