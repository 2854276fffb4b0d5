"""The AuditPipeline construct: SNS topic -> SQS queue (+DLQ) -> recorder Lambda -> DynamoDB.

Composition only: props are checked in ``validation``, resources come from ``builders`` and
``functions``, access from ``permissions``, alarms and metrics from ``monitoring``, the digest
chain from ``sealing``. Every prop has a production-ready default, so
``AuditPipeline(self, "Audit")`` alone is a sound deployment; the README's defaults table lists
them, one row each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

from aws_cdk import Annotations, Duration, Names, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
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
from audit_stack.construct.metric_options import MetricOptions, with_statistic
from audit_stack.construct.publisher_layer import wire_publisher
from audit_stack.construct.sealing import DigestChain
from audit_stack.construct.validation import validate_props, validate_publishers
from audit_stack.lambda_code import contract

__all__ = ["DEFAULT_EVENT_TYPE_INDEX_SHARDS", "AuditPipeline"]

# 10,000 events/s of one type over 16 shards: about 625 writes/s per index partition key, under
# DynamoDB's 1,000 writes/s per partition with room for the spread of a hash.
DEFAULT_EVENT_TYPE_INDEX_SHARDS = 16


class AuditPipeline(Construct):
    """Records audit events published to a topic, exactly once, in an append-only table.

    :param max_receive_count: receives before a message moves to the dead-letter queue.
    :param batch_size: SQS messages per recorder invocation (1-10, or up to 10,000 with a
        batching window).
    :param max_batching_window: how long the event source waits to fill a batch.
    :param max_concurrency: most concurrent recorder invocations (2-1000), so a backlog
        cannot overrun the table.
    :param recorder_timeout: the recorder's timeout; the queue's visibility timeout is 6x it.
    :param event_types: event types the queue subscribes to (SNS filter policy).
    :param encryption_key: a customer-managed KMS key for topic, queues and table; by default
        AWS-managed keys (topic, table) and SSE-SQS (queues).
    :param removal_policy: what ``cdk destroy`` does to the table, the queues and the log
        groups. RETAIN by default; DESTROY (for throwaway dev stacks) also lifts the table's
        deletion protection.
    :param log_retention: how long the functions' logs are kept.
    :param oldest_message_age_alarm: alarm when the oldest queued message is this old.
    :param alarm_action: where every alarm (and its return to OK) is sent, e.g. an SNS action.
        Without one, synthesis shows a warning: alarms that reach nobody protect nothing.
    :param dashboard: also create a CloudWatch dashboard of the pipeline.
    :param seal_interval: how often the sealer signs the records written since the last digest
        (whole minutes, 1 minute to 1 day).
    :param subject_in_clear: record the e-mail address itself as the subject (and in the
        details), as version 1 did, instead of its keyed pseudonym; no pseudonym secret is
        created. For policies that require the address in the audit log.
    :param event_type_index: keep the ``by-event-type-shard`` index (events of one type in a
        time range); each index write costs a write unit.
    :param event_type_index_shards: partition keys per event type in that index (1-256); only
        ever raise it, since events already written stay on their shard.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        max_receive_count: int = 5,
        batch_size: int = 10,
        max_batching_window: Duration | None = None,
        max_concurrency: int = 5,
        recorder_timeout: Duration | None = None,
        event_types: Sequence[str] = ("AccountDeleted",),
        encryption_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        oldest_message_age_alarm: Duration | None = None,
        alarm_action: cloudwatch.IAlarmAction | None = None,
        dashboard: bool = False,
        seal_interval: Duration | None = None,
        subject_in_clear: bool = False,
        event_type_index: bool = True,
        event_type_index_shards: int = DEFAULT_EVENT_TYPE_INDEX_SHARDS,
    ) -> None:
        # Every prop is checked before any child is created, so bad input leaves nothing behind.
        validate_props(
            {
                "max_receive_count": max_receive_count,
                "batch_size": batch_size,
                "max_batching_window": max_batching_window,
                "max_concurrency": max_concurrency,
                "recorder_timeout": recorder_timeout,
                "event_types": event_types,
                "encryption_key": encryption_key,
                "removal_policy": removal_policy,
                "log_retention": log_retention,
                "oldest_message_age_alarm": oldest_message_age_alarm,
                "alarm_action": alarm_action,
                "dashboard": dashboard,
                "seal_interval": seal_interval,
                "subject_in_clear": subject_in_clear,
                "event_type_index": event_type_index,
                "event_type_index_shards": event_type_index_shards,
            }
        )
        recorder_timeout = recorder_timeout or Duration.seconds(30)
        oldest_message_age_alarm = oldest_message_age_alarm or Duration.minutes(15)
        seal_interval = seal_interval or Duration.minutes(5)
        super().__init__(scope, construct_id)
        self._redrivers = permissions.PrincipalArns()
        self._lookup_principals = permissions.PrincipalArns()
        self._tagged_lookup_principals: permissions.TaggedReaders | None = None
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
                        allowlist=list(event_types)
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
        )
        self._pseudonym_secret: secretsmanager.Secret | None = None
        if not subject_in_clear:
            self._pseudonym_secret = builders.pseudonym_secret(
                self, "PseudonymSecret", encryption_key=encryption_key, removal_policy=retain
            )
            self._tagged_lookup_principals = permissions.TaggedReaders(
                permissions.only_lookup_principals_read(
                    self._pseudonym_secret, self._lookup_principals
                ),
                tag_key=f"audit-pipeline-lookup:{Names.unique_id(self._pseudonym_secret)[-96:]}",
            )

        make_function = function_factory(self, log_retention=log_retention, removal_policy=retain)
        self._publisher = make_function(
            "DeleteAccountFunction",
            description="Publishes an AccountDeleted audit event (the original deleteAccount)",
            handler=PUBLISHER_HANDLER,
            timeout=Duration.seconds(10),
            environment={
                contract.ENV_TOPIC_ARN: self._topic.topic_arn,
                **self._subject_environment(),
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
            environment={
                contract.ENV_TABLE_NAME: self._table.table_name,
                contract.ENV_EVENT_TYPE_INDEX_SHARDS: str(self._event_type_index_shards),
                **self._subject_environment(),
            },
        )
        # Records messages that still name an address (version 1) under its pseudonym.
        self.grant_lookup(self._recorder)
        self._recorder.add_event_source(
            event_sources.SqsEventSource(
                self._queue,
                batch_size=batch_size,
                max_batching_window=max_batching_window,
                report_batch_item_failures=True,
                max_concurrency=max_concurrency,
            )
        )
        permissions.grant_record(self._recorder, self._table.table_arn, encryption_key)
        recorder_role = self._recorder.role
        assert recorder_role is not None  # functions.function always gives an explicit role
        # Only the recorder appends; nobody, the recorder included, changes or removes a record.
        for statement in permissions.append_only_statements(recorder_role):
            compat.add_to_table_resource_policy(self._table, statement)
        permissions.only_topic_or_redrive_sends(self._queue, self._topic, self._redrivers)

        self._chain = DigestChain(
            self,
            "Sealing",
            table=self._table,
            recorder=self._recorder,
            make_function=make_function,
            interval=seal_interval,
            encryption_key=encryption_key,
            removal_policy=retain,
        )
        self._recorder.add_environment(
            contract.ENV_SEAL_QUEUE_URL, self._chain.seal_queue.queue_url
        )
        self._control_changes = monitoring.watch_control_changes(
            self,
            tables=[self._table, self._chain.digest_table],
            queues=[self._queue, self._chain.seal_queue],
            functions=[self._recorder, self._chain.sealer],
            signing_key=self._chain.signing_key,
        )

        if alarm_action is None:
            Annotations.of(self).add_warning_v2(
                "audit-pipeline:noAlarmAction",
                "AuditPipeline has no alarm_action: its alarms (dead letters, tampering, "
                "control changes) will reach nobody. Pass alarm_action=SnsAction(topic).",
            )
        self._mark_resources()
        self._alarms = monitoring.create_alarms(
            self,
            oldest_message_age=oldest_message_age_alarm,
            seal_interval=seal_interval,
            action=alarm_action,
        )
        if dashboard:
            monitoring.create_dashboard(self, self._alarms)

    def _publisher_environment(self) -> dict[str, str]:
        """What ``AuditPublisher.from_environment()`` reads (names: the contract)."""
        return {contract.ENV_TOPIC_ARN: self._topic.topic_arn, **self._subject_environment()}

    def _subject_environment(self) -> dict[str, str]:
        if self._pseudonym_secret is None:
            return {contract.ENV_SUBJECT_IN_CLEAR: "true"}
        return {contract.ENV_PSEUDONYM_SECRET_ARN: self._pseudonym_secret.secret_arn}

    def _mark_resources(self) -> None:
        for construct, role in (
            (self._topic, discovery.TOPIC),
            (self._queue, discovery.QUEUE),
            (self._dead_letter_queue, discovery.DEAD_LETTER_QUEUE),
            (self._table, discovery.TABLE),
            (self._publisher, discovery.PUBLISHER),
            (self._recorder, discovery.RECORDER),
            (self._subscription_dead_letter_queue, discovery.SUBSCRIPTION_DEAD_LETTER_QUEUE),
            (self._chain.seal_queue, discovery.SEAL_QUEUE),
            (self._chain.digest_table, discovery.DIGEST_TABLE),
            (self._chain.signing_key, discovery.SIGNING_KEY),
        ):
            self._marker.assign(construct, role)
        if self._pseudonym_secret is not None:
            self._marker.assign(self._pseudonym_secret, discovery.PSEUDONYM_SECRET)

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
    def publisher_function(self) -> lambda_.IFunction:
        """The original solution's deleteAccount: publishes AccountDeleted events."""
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
    def seal_queue(self) -> sqs.IQueue:
        """The recorder's reports of what it wrote, waiting for the sealer."""
        return self._chain.seal_queue

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
        return monitoring.queue_depth(self._dead_letter_queue, "DLQ messages", dict(props))

    def metric_subscription_dead_letter_queue_depth(
        self, **props: Unpack[MetricOptions]
    ) -> cloudwatch.IMetric:
        """Undeliverable notifications in the subscription's DLQ, visible or in flight."""
        return monitoring.queue_depth(
            self._subscription_dead_letter_queue, "Undelivered", dict(props)
        )

    def metric_publisher_errors(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Failed publisher invocations (Sum)."""
        return self._publisher.metric_errors(**with_statistic("Sum", props))

    def metric_sealer_errors(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Failed sealer runs (Sum)."""
        return self._chain.sealer.metric_errors(**with_statistic("Sum", props))

    def metric_oldest_seal_notice_age(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Age in seconds of the oldest record report waiting for the sealer (Maximum)."""
        return self._chain.seal_queue.metric_approximate_age_of_oldest_message(
            **with_statistic("Maximum", props)
        )

    def metric_tampered_records(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Records the sealer found altered or removed before sealing (custom metric, Sum)."""
        return monitoring.custom_metric(contract.METRIC_TAMPERED_RECORDS, dict(props))

    def metric_control_changes(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """CloudTrail events that changed the log's controls (EventBridge TriggeredRules)."""
        return monitoring.rule_triggers(self._control_changes, dict(props))

    def metric_oldest_message_age(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Age in seconds of the oldest message in the queue (Maximum)."""
        return self._queue.metric_approximate_age_of_oldest_message(
            **with_statistic("Maximum", props)
        )

    def metric_recorder_errors(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Failed recorder invocations (Sum)."""
        return self._recorder.metric_errors(**with_statistic("Sum", props))

    def metric_recorder_throttles(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Throttled recorder invocations (Sum)."""
        return self._recorder.metric_throttles(**with_statistic("Sum", props))

    def metric_events_recorded(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Audit events written to the table (custom metric, Sum)."""
        return monitoring.custom_metric(contract.METRIC_EVENTS_RECORDED, dict(props))

    def metric_duplicates_skipped(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Redelivered events recognised as already recorded (custom metric, Sum)."""
        return monitoring.custom_metric(contract.METRIC_DUPLICATES_SKIPPED, dict(props))

    def metric_poison_messages(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Messages the recorder rejected as malformed (custom metric, Sum)."""
        return monitoring.custom_metric(contract.METRIC_POISON_MESSAGES, dict(props))

    # -- access (permissions.py) ----------------------------------------------------------

    def grant_publish(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let another principal publish audit events to the topic."""
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
        stack, never the reverse (see ``permissions.TaggedReaders``).
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
        permissions.allow_cross_account_publishers(
            self,
            self._topic,
            self._encryption_key,
            accounts=accounts,
            organization_id=organization_id,
        )
