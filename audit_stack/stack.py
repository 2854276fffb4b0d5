"""AuditStack: the deployable stack of app.py, one AuditPipeline and its outputs."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnOutput, Environment, IStackSynthesizer, Stack
from constructs import Construct

from audit_stack import outputs
from audit_stack.pipeline import AuditPipeline
from audit_stack.props import AuditPipelineProps


class AuditStack(Stack):
    """One AuditPipeline plus CfnOutputs for people who read them (tools do not need them).

    :param pipeline_props: the AuditPipeline's props, e.g.
        ``{"recorder_timeout": Duration.seconds(20)}``.
    The other keywords are the ``Stack`` props of the same names.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_props: AuditPipelineProps | None = None,
        description: str | None = None,
        env: Environment | None = None,
        stack_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        termination_protection: bool | None = None,
        synthesizer: IStackSynthesizer | None = None,
        cross_region_references: bool | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=description,
            env=env,
            stack_name=stack_name,
            tags=tags,
            termination_protection=termination_protection,
            synthesizer=synthesizer,
            cross_region_references=cross_region_references,
        )
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
        for output_id, (value, description_text) in values.items():
            CfnOutput(self, output_id, value=value, description=description_text)
