"""The original Serverless Framework solution's configuration as a CDK stack, for the benchmark.

deleteAccount -> DeletedAccountTopic -> DeletedAccountEventAuditQueue (+DLQ after 5 receives)
-> recordDeletedAccountInfo (batch size 1) -> DeletedAccountAuditTable: 128 MB x86_64 functions,
one unconditional write per message, no partial batch responses, no index. Its outputs use the
same keys as AuditStack's, so the benchmark drives both stacks the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from audit_stack import outputs

FUNCTIONS_DIR = Path(__file__).resolve().parent / "functions"
# The Serverless Framework's defaults, which the original kept: 128 MB was set explicitly,
# x86_64 and a 6-second timeout are the framework's defaults.
MEMORY_MB = 128
TIMEOUT = Duration.seconds(6)
BATCH_SIZE = 1
MAX_RECEIVE_COUNT = 5


class OriginalAuditStack(Stack):
    """The baseline configuration the benchmark compares AuditStack with."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        topic = sns.Topic(self, "DeletedAccountTopic")
        dead_letter_queue = sqs.Queue(
            self, "DeletedAccountEventAuditDLQ", retention_period=Duration.days(14)
        )
        queue = sqs.Queue(
            self,
            "DeletedAccountEventAuditQueue",
            visibility_timeout=Duration.seconds(TIMEOUT.to_seconds() * 6),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=MAX_RECEIVE_COUNT, queue=dead_letter_queue
            ),
        )
        topic.add_subscription(subscriptions.SqsSubscription(queue))
        table = dynamodb.Table(
            self,
            "DeletedAccountAuditTable",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            removal_policy=RemovalPolicy.DESTROY,
        )
        code = lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=["**/__pycache__"])
        common: dict[str, Any] = {
            # The same Python as AuditStack, so that only the configuration differs.
            "runtime": lambda_.Runtime.PYTHON_3_14,
            "architecture": lambda_.Architecture.X86_64,
            "memory_size": MEMORY_MB,
            "timeout": TIMEOUT,
            "code": code,
        }
        delete_account = lambda_.Function(
            self,
            "DeleteAccount",
            handler="handler.delete_account",
            environment={"TOPIC_ARN": topic.topic_arn},
            **common,
        )
        topic.grant_publish(delete_account)
        record = lambda_.Function(
            self,
            "RecordDeletedAccountInfo",
            handler="handler.record_deleted_account_info",
            environment={"TABLE_NAME": table.table_name},
            **common,
        )
        table.grant_write_data(record)
        record.add_event_source(event_sources.SqsEventSource(queue, batch_size=BATCH_SIZE))

        values = {
            outputs.TOPIC_ARN: topic.topic_arn,
            outputs.QUEUE_URL: queue.queue_url,
            outputs.DEAD_LETTER_QUEUE_URL: dead_letter_queue.queue_url,
            outputs.TABLE_NAME: table.table_name,
            outputs.PUBLISHER_FUNCTION_NAME: delete_account.function_name,
            outputs.RECORDER_FUNCTION_NAME: record.function_name,
        }
        for output_id, value in values.items():
            CfnOutput(self, output_id, value=value)
