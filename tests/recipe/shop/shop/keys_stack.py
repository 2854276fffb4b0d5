"""The shop's keys, in a stack of their own that other stacks reference."""

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from constructs import Construct


class KeysStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.audit_key = kms.Key(
            self,
            "AuditKey",
            description="The shop's audit logs: topic, queues and tables",
            enable_key_rotation=True,
        )
