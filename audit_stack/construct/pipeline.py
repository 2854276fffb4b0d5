"""The AuditPipeline construct: SNS topic -> SQS queue (+DLQ) -> recorder Lambda -> DynamoDB.

Composition only: props are checked in ``validation``, resources come from ``builders`` and
``functions``, access from ``permissions``, alarms and metrics from ``monitoring``, the digest
chain from ``sealing``. Every prop has a production-ready default, so
``AuditPipeline(self, "Audit")`` alone is a sound deployment; the README's defaults table lists
them, one row each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Unpack

from aws_cdk import Annotations, Duration, Names, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from audit_stack import discovery
from audit_stack.construct import builders, compat, monitoring, permissions
from audit_stack.construct.encryption import (
    QueueSubscription,
    require_key_statement,
    sns_delivery_statement,
)
from audit_stack.construct.functions import PUBLISHER_HANDLER, RECORDER_HANDLER, function_factory
from audit_stack.construct.marking import PipelineMarker
from audit_stack.construct.metric_options import MetricOptions
from audit_stack.construct.props import AuditPipelineProps
from audit_stack.construct.publisher_layer import wire_publisher
from audit_stack.construct.sealing import DigestChain
from audit_stack.construct.validation import validate_props, validate_publishers
from audit_stack.lambda_code import audit_events_module, contract

if TYPE_CHECKING:
    from audit_events import catalogue as _catalogue
    from audit_events import redaction as _redaction
else:
    _catalogue = audit_events_module("catalogue")
    _redaction = audit_events_module("redaction")

EventType = _catalogue.EventType

__all__ = ["AuditPipeline", "EventType"]


class AuditPipeline(Construct):
    """Records audit events published to a topic, exactly once, in an append-only table.

    Every prop is optional and declared once, with its default and meaning, in
    ``AuditPipelineProps`` (``props.py``; the README's "Props" table is generated from it); the
    rules on their values are ``validation.RULES``. ``AuditPipeline(self, "Audit")`` alone is a
    production-ready deployment.
    """

    def __init__(
        self, scope: Construct, construct_id: str, **props: Unpack[AuditPipelineProps]
    ) -> None:
        # Every prop is checked before any child is created, so bad input leaves nothing behind.
        values = validate_props(props)
        max_receive_count: int = values["max_receive_count"]
        batch_size: int = values["batch_size"]
        max_batching_window: Duration | None = values["max_batching_window"]
        max_concurrency: int = values["max_concurrency"]
        recorder_timeout: Duration = values["recorder_timeout"]
        event_types: Sequence[str | _catalogue.EventType] = values["event_types"]
        encryption_key: kms.IKey | None = values["encryption_key"]
        removal_policy: RemovalPolicy = values["removal_policy"]
        log_retention: logs.RetentionDays = values["log_retention"]
        oldest_message_age_alarm: Duration = values["oldest_message_age_alarm"]
        alarm_action: cloudwatch.IAlarmAction | None = values["alarm_action"]
        dashboard: bool = values["dashboard"]
        seal_interval: Duration = values["seal_interval"]
        subject_in_clear: bool = values["subject_in_clear"]
        event_type_index: bool = values["event_type_index"]
        event_type_index_shards: int = values["event_type_index_shards"]
        anchor_bucket: s3.IBucket | None = values["anchor_bucket"]
        anchor_retention: Duration = values["anchor_retention"]
        retention: Duration | None = values["retention"]
        super().__init__(scope, construct_id)
        self._catalogue = _catalogue.catalogue_schemas(event_types)
        self._redrivers = permissions.PrincipalArns()
        # Break-glass principals that may redact records (grant_redact); nobody by default.
        self._redactors = permissions.Redactors()
        self._lookup_principals = permissions.PrincipalArns()
        # Who may publish (grant_publish, allow_publishers); the topic denies everyone else.
        self._publishers = permissions.PrincipalArns()
        self._tagged_publishers = permissions.TaggedPrincipals(
            f"audit-pipeline-publish:{Names.unique_id(self)[-96:]}"
        )
        self._publisher_accounts = permissions.PrincipalArns()
        self._publisher_organizations = permissions.PrincipalArns()
        # Tooling (emulator, fixture, CLI) finds this pipeline's resources by these marks.
        self._marker = PipelineMarker(self)
        self._encryption_key = encryption_key
        retain = removal_policy

        self._topic = builders.topic(self, "Topic", encryption_key=encryption_key)
        self._dead_letter_queue = builders.queue(
            self,
            "DeadLetterQueue",
            retention_period=Duration.days(14),
            encryption_key=encryption_key,
            removal_policy=retain,
            no_dead_letter_queue_because="This queue is the pipeline's dead-letter queue; it "
            "needs none itself.",
        )
        self._queue = builders.queue(
            self,
            "Queue",
            # Shorter than the DLQ's 14 days: a message keeps its first enqueue time when it
            # moves to the DLQ, so the DLQ must retain longer than the source queue.
            retention_period=Duration.days(7),
            encryption_key=encryption_key,
            removal_policy=retain,
            # AWS's guidance for SQS event sources: at least 6x the function timeout.
            visibility_timeout=Duration.seconds(recorder_timeout.to_seconds() * 6),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=max_receive_count, queue=self._dead_letter_queue
            ),
        )
        # Notifications SNS could not deliver to the queue (e.g. the queue's key was disabled).
        self._subscription_dead_letter_queue = builders.queue(
            self,
            "SubscriptionDeadLetterQueue",
            retention_period=Duration.days(14),
            encryption_key=encryption_key,
            removal_policy=retain,
            no_dead_letter_queue_because="This queue is the topic subscription's dead-letter "
            "queue.",
        )
        self._topic.add_subscription(
            QueueSubscription(
                self._queue,
                dead_letter_queue=self._subscription_dead_letter_queue,
                filter_policy={
                    contract.EVENT_TYPE_ATTRIBUTE: sns.SubscriptionFilter.string_filter(
                        # The built-in types (redaction entries) reach the recorder too.
                        allowlist=list(
                            dict.fromkeys([*self._catalogue, *_redaction.BUILT_IN_EVENT_TYPES])
                        )
                    )
                },
            )
        )
        if encryption_key is not None:
            require_key_statement(
                self,
                encryption_key,
                sns_delivery_statement(self),
                purpose="SNS cannot deliver audit events to the queue encrypted with it otherwise",
            )

        self._event_type_index_shards = event_type_index_shards if event_type_index else 0
        self._table = builders.audit_table(
            self,
            "Table",
            encryption_key=encryption_key,
            removal_policy=retain,
            event_type_index_shards=self._event_type_index_shards,
            time_to_live_attribute=contract.EXPIRES_AT_ATTRIBUTE if retention else None,
        )
        self._pseudonym_secret: secretsmanager.Secret | None = None
        self._tagged_lookup_principals: permissions.TaggedPrincipals | None = None
        self._key_custodians = permissions.PrincipalArns()
        deployer_arn = permissions.deployment_role_arn(self)
        if deployer_arn is not None:
            # CloudFormation creates and updates the secret (the generated value, its policy).
            self._key_custodians.add(deployer_arn)
        if not subject_in_clear:
            self._pseudonym_secret = builders.pseudonym_secret(
                self, "PseudonymSecret", encryption_key=encryption_key, removal_policy=retain
            )
            self._tagged_lookup_principals = permissions.TaggedPrincipals(
                f"audit-pipeline-lookup:{Names.unique_id(self._pseudonym_secret)[-96:]}"
            )
            permissions.only_lookup_principals_read(
                self._pseudonym_secret, self._lookup_principals, self._tagged_lookup_principals
            )
            permissions.only_custodians_change_the_key(self._pseudonym_secret, self._key_custodians)

        make_function = function_factory(self, log_retention=log_retention, removal_policy=retain)
        self._publisher: lambda_.Function | None = None
        if contract.ACCOUNT_DELETED in self._catalogue:
            self._publisher = make_function(
                "DeleteAccountFunction",
                description="Publishes an AccountDeleted audit event (the original deleteAccount)",
                handler=PUBLISHER_HANDLER,
                timeout=Duration.seconds(10),
                environment={
                    contract.ENV_TOPIC_ARN: self._topic.topic_arn,
                    **self._subject_environment(),
                    **self.catalogue_environment(),
                },
            )
            self.grant_publish(self._publisher)
            self.grant_lookup(self._publisher)

        self._recorder = make_function(
            "RecordAuditEventFunction",
            description="Records audit events from the queue, once each "
            "(the original recordDeletedAccountInfo)",
            handler=RECORDER_HANDLER,
            timeout=recorder_timeout,
            # Per batch, the recorder's log group gets its metric line and nothing else: not
            # Lambda's platform.start/platform.report (CloudWatch Logs bills every byte; its
            # Duration, Errors and Throttles are metrics), nor a summary of a clean batch.
            system_log_level=lambda_.SystemLogLevel.WARN,
            environment={
                contract.ENV_TABLE_NAME: self._table.table_name,
                # The one TopicArn whose signed notifications the recorder accepts.
                contract.ENV_TOPIC_ARN: self._topic.topic_arn,
                contract.ENV_EVENT_TYPE_INDEX_SHARDS: str(self._event_type_index_shards),
                **self._subject_environment(),
                **self.catalogue_environment(),
                **self._retention_environment(retention),
            },
        )
        # Records messages that still name an address (version 1) under its pseudonym.
        self.grant_lookup(self._recorder)
        event_source = event_sources.SqsEventSource(
            self._queue,
            batch_size=batch_size,
            max_batching_window=max_batching_window,
            report_batch_item_failures=True,
            max_concurrency=max_concurrency,
        )
        self._recorder.add_event_source(event_source)
        permissions.grant_record(self._recorder, self._table.table_arn, encryption_key)
        recorder_role = self._recorder.role
        assert recorder_role is not None  # functions.function always gives an explicit role
        # Only the recorder appends; nobody, the recorder included, changes or removes a record.
        # ...but a redaction (grant_redact): one UpdateItem of a fixed shape, or moving a
        # record in clear to a stub under its pseudonym.
        self._redactors.attach(
            lambda statement: compat.add_to_table_resource_policy(self._table, statement)
        )
        for statement in permissions.append_only_statements(
            recorder_role, redactors=self._redactors
        ):
            compat.add_to_table_resource_policy(self._table, statement)
        permissions.only_topic_or_redrive_sends(self._queue, self._topic, self._redrivers)

        self._chain = DigestChain(
            self,
            "Sealing",
            table=self._table,
            make_function=make_function,
            interval=seal_interval,
            encryption_key=encryption_key,
            removal_policy=retain,
            anchor_bucket=anchor_bucket,
            anchor_retention=anchor_retention,
        )
        self._writer_key = self._writer_key_for(
            recorder_role, encryption_key=encryption_key, removal_policy=retain
        )
        self._deny_all_but_the_pipeline(recorder_role)
        if retention is None:
            Annotations.of(self).add_warning_v2(
                "audit-pipeline:noRetention",
                "AuditPipeline has no retention: records are kept for the life of the table. "
                "Audit records are personal data kept for a legal obligation: set retention="
                "Duration.days(N) (-c retention_days=N for AuditStack) to the period that "
                "obligation names, so that records are deleted after it (README, Retention).",
            )
        if alarm_action is None:
            Annotations.of(self).add_warning_v2(
                "audit-pipeline:noAlarmAction",
                "AuditPipeline has no alarm_action: its alarms (dead letters, tampering, "
                "control changes) will reach nobody. Pass alarm_action=SnsAction(topic).",
            )
        self._mark_resources()
        sealer_role = self._chain.sealer.role
        assert sealer_role is not None
        self._control_watch = monitoring.ControlWatch(
            self,
            monitoring.WatchedResources(
                tables=[self._table, self._chain.digest_table],
                queues=[self._queue],
                topic=self._topic,
                functions=[
                    function
                    for function in (self._publisher, self._recorder, self._chain.sealer)
                    if function is not None
                ],
                writer_roles=[recorder_role, sealer_role, *self._publisher_roles()],
                event_source_mapping_ids=[
                    event_source.event_source_mapping_id,
                    self._chain.stream_source.event_source_mapping_id,
                ],
                keys=[
                    self._chain.signing_key,
                    *([encryption_key] if encryption_key is not None else []),
                ],
                secrets=[
                    self._writer_key,
                    *([self._pseudonym_secret] if self._pseudonym_secret else []),
                ],
            ),
        )
        self._metrics = monitoring.PipelineMetrics(
            topic=self._topic,
            queue=self._queue,
            dead_letter_queue=self._dead_letter_queue,
            subscription_dead_letter_queue=self._subscription_dead_letter_queue,
            recorder=self._recorder,
            publisher=self._publisher,
            sealer=self._chain.sealer,
            control_watch=self._control_watch,
        )
        self._alarms = monitoring.create_alarms(
            self,
            self._metrics,
            oldest_message_age=oldest_message_age_alarm,
            seal_interval=seal_interval,
            action=alarm_action,
            name=self._control_watch.alarm_name,
        )
        if dashboard:
            monitoring.create_dashboard(self, self._metrics, self._alarms)

    def _deny_all_but_the_pipeline(self, recorder_role: iam.IRole) -> None:
        """Integrity v2 (docs/INTEGRITY.md, layer 1): only granted producers publish, only the
        consumers receive, and the writers' roles write and sign only from their functions."""
        permissions.only_granted_principals_publish(
            self._topic,
            publishers=self._publishers,
            accounts=self._publisher_accounts,
            organizations=self._publisher_organizations,
            tagged=self._tagged_publishers,
        )
        deployer = permissions.deployment_role_arn(self)
        if deployer is None:
            Annotations.of(self).add_info(
                "The stack's synthesizer deploys with the caller's credentials: the topic "
                "policy cannot name a deployment role, so subscription and topic changes are "
                "alarmed (ControlChangedAlarm) but not denied."
            )
        else:
            permissions.only_the_deployment_changes_the_topic(self._topic, deployer)
        sealer = self._chain.sealer
        sealer_role = sealer.role
        assert sealer_role is not None  # functions.function always gives an explicit role
        consumers = permissions.PrincipalArns()
        consumers.add(recorder_role.role_arn)
        permissions.only_consumer_receives(self._queue, consumers)
        permissions.bind_to_function(
            self,
            "RecorderBoundToItsFunction",
            self._recorder,
            actions=[*permissions.APPEND_ACTIONS, *permissions.INSERT_ACTIONS],
            resources=[self._table.table_arn],
        )
        permissions.bind_to_function(
            self,
            "SealerBoundToItsFunction",
            sealer,
            actions=[*permissions.APPEND_ACTIONS, *permissions.SIGN_ACTIONS],
            resources=[self._chain.digest_table.table_arn, self._chain.signing_key.key_arn],
        )

    def _writer_key_for(
        self,
        recorder_role: iam.IRole,
        *,
        encryption_key: kms.IKey | None,
        removal_policy: RemovalPolicy,
    ) -> secretsmanager.Secret:
        """The key of the recorder's MAC on each item it writes, which the sealer checks: only
        those two roles read it, only the key's custodians change it (docs/INTEGRITY.md)."""
        key = builders.writer_key(
            self, "WriterKey", encryption_key=encryption_key, removal_policy=removal_policy
        )
        sealer = self._chain.sealer
        writers = permissions.PrincipalArns()
        for function, role in ((self._recorder, recorder_role), (sealer, sealer.role)):
            assert role is not None  # functions.function always gives an explicit role
            writers.add(role.role_arn)
            # On the role only (as grant_lookup does): a grant on the key's policy would make a
            # customer key's stack depend on the pipeline's.
            iam.Grant.add_to_principal(
                grantee=function,
                actions=["secretsmanager:GetSecretValue"],
                resource_arns=[key.secret_arn],
            )
            if encryption_key is not None:
                encryption_key.grant(function, *permissions.LOOKUP_KEY_ACTIONS)
            function.add_environment(contract.ENV_WRITER_KEY_SECRET_ARN, key.secret_arn)
        permissions.only_writers_read_the_writer_key(key, writers)
        permissions.only_custodians_change_the_key(
            key, self._key_custodians, sid="OnlyCustodiansChangeTheWriterKey"
        )
        return key

    def _publisher_roles(self) -> list[iam.IRole]:
        """The deleteAccount function's role, when the catalogue has that function."""
        if self._publisher is None:
            return []
        role = self._publisher.role
        assert role is not None  # functions.function always gives an explicit role
        return [role]

    def catalogue_environment(self) -> dict[str, str]:
        """``EVENT_CATALOGUE``: the pipeline's event types and details schemas, compact JSON,
        for a producer's function (``AuditPublisher.from_environment`` reads it)."""
        return {contract.ENV_EVENT_CATALOGUE: _catalogue.catalogue_json(self._catalogue)}

    @property
    def event_types(self) -> tuple[str, ...]:
        """The catalogue's event types, in the order given."""
        return tuple(self._catalogue)

    def _publisher_environment(self) -> dict[str, str]:
        """What ``AuditPublisher.from_environment()`` reads (names: the contract): the topic,
        the pseudonym secret (or subject in clear) and the catalogue it checks events against."""
        return {
            contract.ENV_TOPIC_ARN: self._topic.topic_arn,
            **self._subject_environment(),
            **self.catalogue_environment(),
        }

    @staticmethod
    def _retention_environment(retention: Duration | None) -> dict[str, str]:
        """``RETENTION_DAYS`` for the recorder (whole days, validated); none without one."""
        if retention is None:
            return {}
        return {contract.ENV_RETENTION_DAYS: str(int(retention.to_days()))}

    def _subject_environment(self) -> dict[str, str]:
        if self._pseudonym_secret is None:
            return {contract.ENV_SUBJECT_IN_CLEAR: contract.SUBJECT_IN_CLEAR_ON}
        return {contract.ENV_PSEUDONYM_SECRET_ARN: self._pseudonym_secret.secret_arn}

    def _mark_resources(self) -> None:
        for construct, role in (
            (self._topic, discovery.TOPIC),
            (self._queue, discovery.QUEUE),
            (self._dead_letter_queue, discovery.DEAD_LETTER_QUEUE),
            (self._table, discovery.TABLE),
            (self._recorder, discovery.RECORDER),
            (self._subscription_dead_letter_queue, discovery.SUBSCRIPTION_DEAD_LETTER_QUEUE),
            (self._chain.digest_table, discovery.DIGEST_TABLE),
            (self._chain.signing_key, discovery.SIGNING_KEY),
        ):
            self._marker.assign(construct, role)
        if isinstance(self._chain.anchor_bucket, s3.Bucket):
            self._marker.assign(self._chain.anchor_bucket, discovery.ANCHOR_BUCKET)
        if self._pseudonym_secret is not None:
            self._marker.assign(self._pseudonym_secret, discovery.PSEUDONYM_SECRET)
        if self._publisher is not None:
            self._marker.assign(self._publisher, discovery.PUBLISHER)

    # -- resources ------------------------------------------------------------------------

    @property
    def topic(self) -> sns.ITopic:
        """The topic audit events are published to."""
        return self._topic

    @property
    def queue(self) -> sqs.IQueue:
        """The queue the recorder consumes."""
        return self._queue

    @property
    def dead_letter_queue(self) -> sqs.IQueue:
        """Where messages go after max_receive_count failed receives."""
        return self._dead_letter_queue

    @property
    def table(self) -> dynamodb.ITable:
        """The append-only audit table."""
        return self._table

    @property
    def publisher_function(self) -> lambda_.IFunction | None:
        """The original solution's deleteAccount: publishes AccountDeleted events; None when
        ``AccountDeleted`` is not in ``event_types``."""
        return self._publisher

    @property
    def recorder_function(self) -> lambda_.IFunction:
        """The original solution's recordDeletedAccountInfo: writes events to the table."""
        return self._recorder

    @property
    def sealer_function(self) -> lambda_.IFunction:
        """Signs the records written since the last seal into the digest chain."""
        return self._chain.sealer

    @property
    def digest_table(self) -> dynamodb.ITable:
        """The signed, chained digests (docs/INTEGRITY.md)."""
        return self._chain.digest_table

    @property
    def signing_key(self) -> kms.IKey:
        """The asymmetric key only the sealer may Sign with; verifiers use its public key."""
        return self._chain.signing_key

    @property
    def subscription_dead_letter_queue(self) -> sqs.IQueue:
        """Notifications SNS could not deliver to the queue."""
        return self._subscription_dead_letter_queue

    @property
    def pseudonym_secret_arn(self) -> str:
        """The pseudonym secret's ARN, e.g. for a producer's environment (``add_publisher``
        sets it for you); a ``ValueError`` with ``subject_in_clear``, which has no secret."""
        if self._pseudonym_secret is None:
            raise ValueError(
                "AuditPipeline pseudonym_secret_arn: this pipeline records subjects in clear "
                "(subject_in_clear=True) and has no pseudonym secret"
            )
        return self._pseudonym_secret.secret_arn

    @property
    def pseudonym_secret(self) -> secretsmanager.ISecret | None:
        """The key of the subjects' pseudonyms; None with ``subject_in_clear``."""
        return self._pseudonym_secret

    @property
    def event_type_index_shards(self) -> int:
        """Partition keys per event type in the by-type index; 0 without the index."""
        return self._event_type_index_shards

    @property
    def alarms(self) -> tuple[cloudwatch.IAlarm, ...]:
        """Every alarm of the pipeline (README: "Alarms")."""
        return self._alarms

    # -- metrics (monitoring.py) ----------------------------------------------------------

    def metric_dead_letter_queue_depth(self, **props: Unpack[MetricOptions]) -> cloudwatch.IMetric:
        """Messages in the DLQ, visible or in flight (Maximum of each, summed)."""
        return self._metrics.metric_dead_letter_queue_depth(**props)

    def metric_subscription_dead_letter_queue_depth(
        self, **props: Unpack[MetricOptions]
    ) -> cloudwatch.IMetric:
        """Undeliverable notifications in the subscription's DLQ, visible or in flight."""
        return self._metrics.metric_subscription_dead_letter_queue_depth(**props)

    def metric_publisher_errors(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Failed publisher invocations (Sum); the pipeline must have the deleteAccount
        function (``AccountDeleted`` in ``event_types``)."""
        return self._metrics.metric_publisher_errors(**props)

    def metric_sealer_errors(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Failed sealer runs (Sum)."""
        return self._metrics.metric_sealer_errors(**props)

    def metric_sealer_iterator_age(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Age in milliseconds of the newest stream record the sealer took (Lambda's
        IteratorAge, Maximum): how far sealing is behind the table's writes."""
        return self._metrics.metric_sealer_iterator_age(**props)

    def metric_tampered_records(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Records the sealer found altered, deleted or written without a valid hash (custom
        metric, Sum)."""
        return self._metrics.metric_tampered_records(**props)

    def metric_control_changes(self, **props: Unpack[MetricOptions]) -> cloudwatch.IMetric:
        """CloudTrail events that changed the log's controls (the rules' TriggeredRules, summed)."""
        return self._metrics.metric_control_changes(**props)

    @property
    def control_change_rules(self) -> tuple[events.IRule, ...]:
        """The rules matching changes to the log's controls (docs/INTEGRITY.md, layer 3)."""
        return tuple(self._control_watch.rules.values())

    def notify_control_changes(self, topic: sns.ITopic, key: kms.IKey | None = None) -> None:
        """Send every control change the rules match straight to ``topic`` (as well as through
        the ControlChanged alarm), and watch the topic and its ``key`` too: unsubscribing the
        on-call or disabling the key would silence every alarm.

        A topic encrypted with ``key`` must let EventBridge use it (``AuditStack`` does).
        """
        self._control_watch.watch_alarm_topic(topic, key)

    def metric_notifications_filtered_out(
        self, **props: Unpack[MetricOptions]
    ) -> cloudwatch.Metric:
        """Published events no subscription's filter policy accepted (SNS, Sum)."""
        return self._metrics.metric_notifications_filtered_out(**props)

    def metric_unaccounted_events(self, **props: Unpack[MetricOptions]) -> cloudwatch.IMetric:
        """Events published to the topic minus those accounted for: filtered out, failed
        delivery, recorded, skipped as duplicates or rejected as poison (docs/INTEGRITY.md)."""
        return self._metrics.metric_unaccounted_events(**props)

    def metric_digests_written(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Digests the sealer wrote, heartbeats included (custom metric, Sum)."""
        return self._metrics.metric_digests_written(**props)

    def metric_oldest_message_age(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Age in seconds of the oldest message in the queue (Maximum)."""
        return self._metrics.metric_oldest_message_age(**props)

    def metric_recorder_errors(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Failed recorder invocations (Sum)."""
        return self._metrics.metric_recorder_errors(**props)

    def metric_recorder_throttles(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Throttled recorder invocations (Sum)."""
        return self._metrics.metric_recorder_throttles(**props)

    def metric_events_recorded(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Audit events written to the table (custom metric, Sum)."""
        return self._metrics.metric_events_recorded(**props)

    def metric_duplicates_skipped(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Redelivered events recognised as already recorded (custom metric, Sum)."""
        return self._metrics.metric_duplicates_skipped(**props)

    def metric_poison_messages(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Messages the recorder rejected as malformed (custom metric, Sum)."""
        return self._metrics.metric_poison_messages(**props)

    def metric_unverified_messages(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Messages the recorder refused as not signed by SNS for its topic (custom, Sum)."""
        return self._metrics.metric_unverified_messages(**props)

    # -- access (permissions.py) ----------------------------------------------------------

    def grant_publish(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let another principal publish audit events to the topic.

        The topic denies sns:Publish to every principal it does not name, so the grantee must
        be an IAM role or user (or have one, like a function).
        """
        permissions.add_principal(
            grantee,
            self,
            readers=self._publishers,
            tagged=self._tagged_publishers,
            purpose="grant_publish",
        )
        return permissions.grant_publish(grantee, self._topic, self._encryption_key)

    def grant_redrive(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal move messages from the DLQ back to the queue (``audit dlq redrive``).

        The queue's policy denies SendMessage to everyone but the topic and these principals,
        and a DLQ redrive sends with the caller's permissions. The grantee must be a role or a
        user (its ARN goes into the queue policy).
        """
        return permissions.grant_redrive(
            grantee,
            queue=self._queue,
            dead_letter_queue=self._dead_letter_queue,
            encryption_key=self._encryption_key,
            redrivers=self._redrivers,
        )

    def grant_verify(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal run ``audit verify``: read records and digests, get the public key."""
        return self._chain.grant_verify(grantee, self._table)

    def grant_lookup(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal turn e-mail addresses into subjects (read the pseudonym secret).

        Whoever holds it can test whether an address is in the audit log: grant it to the
        functions and operators that look accounts up, and to nobody else. With
        ``subject_in_clear`` there is no secret, and nothing is granted.
        """
        return permissions.grant_lookup(
            grantee,
            secret=self._pseudonym_secret,
            encryption_key=self._encryption_key,
            readers=self._lookup_principals,
            tagged_readers=self._tagged_lookup_principals,
        )

    def grant_key_custody(self, grantee: iam.IGrantable) -> None:
        """Name a break-glass principal that may replace, rotate, re-police or delete the
        pseudonym key (the secret's policy denies it to everyone else, administrators and this
        pipeline's own functions included; the control-change rules alarm on every such call).

        Grants nothing by itself: the principal still needs ``secretsmanager:*`` on the secret
        in its own IAM policy. With ``subject_in_clear`` there is no key, and this does nothing.
        """
        self._key_custodians.add(permissions.principal_arn(grantee, purpose="grant_key_custody"))

    def grant_redact(self, grantee: iam.IGrantable) -> iam.Grant:
        """Name a break-glass principal that may run ``audit redact``: replace a record's
        personal content with a stub that keeps its key and sealed hash, and publish the
        ``AuditRecordRedacted`` entry that seals the redaction into the chain.

        The table's policy lets only these principals update a record, and only in a
        redaction's shape (the attributes it names, nothing returned); every other change stays
        denied to everyone. ``audit verify`` reports each redaction, and any stub without a
        sealed entry as tampering. Grants the stack's discovery, the table's reads and
        UpdateItem, ``grant_lookup``, ``grant_publish`` and ``grant_verify`` (a record is
        redacted only once sealed, and the redactor can check the result); the grantee must be a
        role or user.
        """
        self._redactors.add(permissions.principal_arn(grantee, purpose="grant_redact"))
        grant = permissions.grant_stack_discovery(grantee, Stack.of(self))
        permissions.grant_redact(grantee, self._table.table_arn, self._encryption_key)
        self.grant_lookup(grantee)
        self.grant_publish(grantee)
        self.grant_verify(grantee)
        return grant

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let an operator run ``audit trail``, ``audit events`` and ``audit verify``: the
        stack's template and resources, queries on the table and its index, the pseudonym
        secret (``grant_lookup``: a role or user), and what ``grant_verify`` gives."""
        grant = permissions.grant_stack_discovery(grantee, Stack.of(self))
        permissions.grant_table_queries(grantee, self._table.table_arn, self._encryption_key)
        self.grant_lookup(grantee)
        self.grant_verify(grantee)
        return grant

    def grant_operate(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let an operator run ``audit status``, ``audit dlq show``, ``audit dlq redrive``
        (``grant_redrive``: a role or user) and ``audit seal`` (invoke the sealer)."""
        grant = permissions.grant_stack_discovery(grantee, Stack.of(self))
        permissions.grant_status(
            grantee,
            Stack.of(self),
            [self._queue, self._dead_letter_queue, self._subscription_dead_letter_queue],
        )
        permissions.grant_dlq_show(grantee, self._dead_letter_queue, self._encryption_key)
        self.grant_redrive(grantee)
        self._chain.sealer.grant_invoke(grantee)
        return grant

    def add_publisher(self, function: lambda_.Function) -> None:
        """Make ``function`` a producer of this pipeline's events, in one line, in any stack.

        Grants it publishing (``grant_publish``) and pseudonym lookups (``grant_lookup``), sets
        the environment ``AuditPublisher.from_environment()`` reads (the topic ARN and the
        pseudonym secret's ARN, or subject-in-clear), and adds the client's Lambda layer
        (``publisher_layer.py``: ``from audit_stack import AuditPublisher`` works in the
        function with nothing bundled). A function of another stack depends on the pipeline's
        stack, never the reverse (see ``permissions.TaggedPrincipals``).
        """
        wire_publisher(self, function, self._publisher_environment())

    def allow_publishers(
        self, *, accounts: Sequence[str] = (), organization_id: str | None = None
    ) -> None:
        """Let principals of other AWS accounts publish audit events to the topic, e.g. workload
        accounts publishing to a central audit account.

        Adds a topic policy statement per kind of principal (the listed accounts; every account
        of the organization), and, with a customer-managed ``encryption_key``, the key policy
        statement those publishers need (only through SNS). Each account still has to allow its
        own principals ``sns:Publish`` on the topic (and the key's two actions) with IAM.

        :param accounts: 12-digit AWS account ids.
        :param organization_id: an AWS Organizations id (``o-...``).
        """
        validate_publishers(accounts, organization_id)
        for account in accounts:
            self._publisher_accounts.add(account)
        if organization_id is not None:
            self._publisher_organizations.add(organization_id)
        permissions.allow_cross_account_publishers(
            self,
            self._topic,
            self._encryption_key,
            accounts=accounts,
            organization_id=organization_id,
        )
