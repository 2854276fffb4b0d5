"""AuditStack: the deployable stack of app.py, one AuditPipeline and its outputs."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Annotations, CfnOutput, Environment, IStackSynthesizer, Stack
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from audit_stack import outputs
from audit_stack.construct import AuditPipeline, AuditPipelineProps
from audit_stack.construct.props import props_from_context

# `cdk deploy -c alarm_email=ops@example.com` subscribes that address to the alarm topic.
ALARM_EMAIL_CONTEXT = "alarm_email"
# `cdk deploy -c redrive_role_arn=arn:aws:iam::...:role/Ops` lets that role redrive the DLQ.
REDRIVE_ROLE_CONTEXT = "redrive_role_arn"
# `cdk deploy -c key_custodian_role_arn=arn:aws:iam::...:role/BreakGlass` names the one role that
# may replace, rotate or delete the pseudonym key (grant_key_custody).
KEY_CUSTODIAN_CONTEXT = "key_custodian_role_arn"
# `cdk deploy -c redactor_role_arn=arn:aws:iam::...:role/BreakGlass` names the break-glass role
# of `audit redact` (grant_redact): the table's policy lets it, and only it, redact records.
REDACTOR_CONTEXT = "redactor_role_arn"

__all__ = ["ALARM_EMAIL_CONTEXT", "KEY_CUSTODIAN_CONTEXT", "REDRIVE_ROLE_CONTEXT", "AuditStack"]


class AuditStack(Stack):
    """One AuditPipeline, an alarm topic its alarms reach, and CfnOutputs for people who read
    them (tools do not need them).

    :param pipeline_props: the AuditPipeline's props, e.g.
        ``{"recorder_timeout": Duration.seconds(20)}``; ``alarm_action`` defaults to the
        stack's alarm topic, and props with a context key (``props.py``, e.g.
        ``-c anchor_bucket_name=NAME``) to the context's value.
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
        self.alarm_topic, alarm_key = self._alarm_topic()
        props: AuditPipelineProps = {"alarm_action": cw_actions.SnsAction(self.alarm_topic)}
        # Props with a context key (props.py), e.g. `-c anchor_bucket_name=NAME`; the
        # pipeline_props given in code win over them.
        props.update(props_from_context(self))
        props.update(pipeline_props or {})
        self.pipeline = AuditPipeline(self, "Audit", **props)
        # Control changes reach the topic directly too, and the topic and its key are watched.
        self.pipeline.notify_control_changes(self.alarm_topic, alarm_key)
        redrive_role_arn = self.node.try_get_context(REDRIVE_ROLE_CONTEXT)
        if redrive_role_arn:
            self.pipeline.grant_redrive(
                iam.Role.from_role_arn(self, "RedriveRole", redrive_role_arn, mutable=False)
            )
        redactor_arn = self.node.try_get_context(REDACTOR_CONTEXT)
        if redactor_arn:
            # An imported role: the resource policies name it; its own IAM policy (the README's
            # grant_redact row) is the account's to give.
            self.pipeline.grant_redact(
                iam.Role.from_role_arn(self, "RedactorRole", redactor_arn, mutable=False)
            )
        custodian_arn = self.node.try_get_context(KEY_CUSTODIAN_CONTEXT)
        if custodian_arn:
            self.pipeline.grant_key_custody(
                iam.Role.from_role_arn(self, "KeyCustodianRole", custodian_arn, mutable=False)
            )
        values = {
            outputs.TOPIC_ARN: (self.pipeline.topic.topic_arn, "Publish audit events here"),
            outputs.QUEUE_URL: (self.pipeline.queue.queue_url, "Queue the recorder consumes"),
            outputs.DEAD_LETTER_QUEUE_URL: (
                self.pipeline.dead_letter_queue.queue_url,
                "Messages that failed max_receive_count times",
            ),
            outputs.TABLE_NAME: (self.pipeline.table.table_name, "Append-only audit table"),
            **(
                {
                    outputs.PUBLISHER_FUNCTION_NAME: (
                        publisher.function_name,
                        'deleteAccount: invoke with {"email": ...}',
                    )
                }
                # Only with AccountDeleted in the pipeline's event_types.
                if (publisher := self.pipeline.publisher_function) is not None
                else {}
            ),
            outputs.RECORDER_FUNCTION_NAME: (
                self.pipeline.recorder_function.function_name,
                "recordDeletedAccountInfo: consumes the queue",
            ),
            outputs.SEALER_FUNCTION_NAME: (
                self.pipeline.sealer_function.function_name,
                "Signs new records into the digest chain (audit seal)",
            ),
            outputs.DIGEST_TABLE_NAME: (
                self.pipeline.digest_table.table_name,
                "Signed, chained digests of the audit table (audit verify)",
            ),
            outputs.SIGNING_KEY_ARN: (
                self.pipeline.signing_key.key_arn,
                "KMS key whose public key verifies the digests",
            ),
            outputs.ALARM_TOPIC_ARN: (self.alarm_topic.topic_arn, "Every alarm is sent here"),
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
        for output_id, (value, description_text) in values.items():
            CfnOutput(self, output_id, value=value, description=description_text)

    def _alarm_topic(self) -> tuple[sns.Topic, kms.Key]:
        # CloudWatch cannot publish to a topic encrypted with the AWS-managed aws/sns key, so the
        # alarm topic has its own key that lets CloudWatch use it for this account only.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the audit pipeline's alarm topic",
            enable_key_rotation=True,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        # EventBridge sends the control-change rules' matches to the topic itself.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeRulesPublish",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="Audit pipeline alarms",
            master_key=key,
            enforce_ssl=True,
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        email = self.node.try_get_context(ALARM_EMAIL_CONTEXT)
        if email:
            topic.add_subscription(subscriptions.EmailSubscription(str(email)))
        else:
            Annotations.of(self).add_warning_v2(
                "audit-stack:noAlarmSubscriber",
                "AuditStack's alarm topic has no subscriber: alarms and control changes will "
                f"reach nobody. Deploy with -c {ALARM_EMAIL_CONTEXT}=ADDRESS, or subscribe to "
                "the AlarmTopicArn output.",
            )
        return topic, key
