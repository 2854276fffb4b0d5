"""The AWS Solutions Constructs composition, rebuilt from its defaults: the FALLBACK peer.

The benchmark synthesizes the peer from the real 2.105.0 packages in a side environment
(``bench/peers/solutions_constructs.py``, ``bench/solutions_venv.py``); this hand-built copy runs
only when that environment cannot be made, and the report then labels the peer HAND-BUILT.

aws-sns-sqs + aws-sqs-lambda + aws-lambda-dynamodb, with only the defaults those patterns apply
(their Python packages, 2.105.0, need aws-cdk.cloud-assembly-schema 54.x while the pinned
aws-cdk-lib 2.275.0 needs 55.x, so pip cannot install them beside it). Each default below was
read in github.com/awslabs/aws-solutions-constructs (commit 33c062fd, 2026-08-20),
source/patterns/@aws-solutions-constructs/:

- core/lib/sqs-defaults.ts: queues SSE with the SQS-managed key; DLQ maxReceiveCount 15;
  core/lib/sqs-helper.ts: a DLQ by default, TLS-only queue policies.
- aws-sns-sqs/lib/index.ts: topic and queue encrypted with one new customer managed key
  (key rotation on), the queue subscribed to the topic.
- aws-sqs-lambda/lib/index.ts: ``SqsEventSource(queue)`` with no props: aws-cdk-lib's batch
  size 10, no batching window, no ReportBatchItemFailures.
- core/lib/lambda-defaults.ts: X-Ray tracing active; memory and architecture are the user's,
  left at Lambda's defaults (128 MB, x86_64).
- core/lib/dynamodb-table-defaults.ts: on-demand, AWS-managed encryption, partition key ``id``
  (string), point-in-time recovery on; no index.

The functions are the seed's plain boto3 handlers (one unconditional PutItem per message), which
is what a team composing these patterns writes first.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from audit_stack import outputs
from bench.original.stack import FUNCTIONS_DIR

MAX_RECEIVE_COUNT = 15
# aws-sqs-lambda leaves the event source to aws-cdk-lib, whose SqsEventSource default is 10.
BATCH_SIZE = 10


class SolutionsConstructsAuditStack(Stack):
    """SNS -> SQS (+DLQ) -> Lambda -> DynamoDB as the three Solutions Constructs build it."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        key = kms.Key(self, "EncryptionKey", enable_key_rotation=True)
        # aws-sns-sqs lets SNS use the key, so that it can deliver to the encrypted queue.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                resources=["*"],
            )
        )
        topic = sns.Topic(self, "SnsTopic", master_key=key)
        dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS_MANAGED,
            enforce_ssl=True,
        )
        queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=MAX_RECEIVE_COUNT, queue=dead_letter_queue
            ),
        )
        topic.add_subscription(subscriptions.SqsSubscription(queue))
        table = dynamodb.Table(
            self,
            "DynamoTable",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        code = lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=["**/__pycache__"])
        common: dict[str, Any] = {
            "runtime": lambda_.Runtime.PYTHON_3_14,
            "code": code,
            "tracing": lambda_.Tracing.ACTIVE,
            "timeout": Duration.seconds(3),
        }
        publisher = lambda_.Function(
            self,
            "PublisherFunction",
            handler="handler.delete_account",
            environment={"TOPIC_ARN": topic.topic_arn},
            **common,
        )
        topic.grant_publish(publisher)
        recorder = lambda_.Function(
            self,
            "RecorderFunction",
            handler="handler.record_deleted_account_info",
            # aws-lambda-dynamodb names the table in DDB_TABLE_NAME; the seed's handler reads
            # TABLE_NAME.
            environment={"DDB_TABLE_NAME": table.table_name, "TABLE_NAME": table.table_name},
            **common,
        )
        table.grant_read_write_data(recorder)
        recorder.add_event_source(event_sources.SqsEventSource(queue, batch_size=BATCH_SIZE))

        values = {
            outputs.TOPIC_ARN: topic.topic_arn,
            outputs.QUEUE_URL: queue.queue_url,
            outputs.DEAD_LETTER_QUEUE_URL: dead_letter_queue.queue_url,
            outputs.TABLE_NAME: table.table_name,
            outputs.PUBLISHER_FUNCTION_NAME: publisher.function_name,
            outputs.RECORDER_FUNCTION_NAME: recorder.function_name,
        }
        for output_id, value in values.items():
            CfnOutput(self, output_id, value=value)
