"""AuditStack: the deployable stack of app.py, one AuditPipeline and its outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from audit_stack import outputs
from audit_stack.pipeline import AuditPipeline


class AuditStack(Stack):
    """One AuditPipeline plus CfnOutputs for everything an operator or a test needs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_props: dict[str, Any] | None = None,
        **stack_props: Any,
    ) -> None:
        super().__init__(scope, construct_id, **stack_props)
        self.pipeline = AuditPipeline(self, "Audit", **(pipeline_props or {}))
        values = {
            outputs.TOPIC_ARN: (self.pipeline.topic.topic_arn, "Publish audit events here"),
            outputs.QUEUE_URL: (self.pipeline.queue.queue_url, "Queue the recorder consumes"),
            outputs.DEAD_LETTER_QUEUE_URL: (
                self.pipeline.dead_letter_queue.queue_url,
                "Messages that failed max_receive_count times",
            ),
            outputs.TABLE_NAME: (self.pipeline.table.table_name, "Append-only audit table"),
            outputs.PUBLISHER_FUNCTION_NAME: (
                self.pipeline.publisher_function.function_name,
                'deleteAccount: invoke with {"email": ...}',
            ),
            outputs.RECORDER_FUNCTION_NAME: (
                self.pipeline.recorder_function.function_name,
                "recordDeletedAccountInfo: consumes the queue",
            ),
        }
        secret = self.pipeline.pseudonym_secret
        if secret is not None:
            values[outputs.PSEUDONYM_SECRET_ARN] = (
                secret.secret_arn,
                "Key of the subjects' pseudonyms (audit trail reads it)",
            )
        if self.pipeline.event_type_index_shards:
            values[outputs.EVENT_TYPE_INDEX_SHARDS] = (
                str(self.pipeline.event_type_index_shards),
                "Shards per event type in the by-event-type-shard index",
            )
        for output_id, (value, description) in values.items():
            CfnOutput(self, output_id, value=value, description=description)
