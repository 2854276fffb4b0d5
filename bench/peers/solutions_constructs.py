"""The AWS Solutions Constructs peer, composed from the real 2.105.0 patterns.

Runs only in the side environment ``bench/.venv-solutions`` (``bench/solutions_venv.py`` makes
it): the patterns' packages need aws-cdk.cloud-assembly-schema 54.x, which aws-cdk-lib 2.273.0
resolves beside them, while this project pins aws-cdk-lib 2.275.0 (schema 55.x).

``python -m bench.peers.solutions_constructs <outdir>``

aws-sns-sqs (topic, queue, DLQ, their keys), aws-lambda-dynamodb (the recorder and its table) and
aws-sqs-lambda (the event source between them), each with its own defaults; only what a user must
give is given: the function's code, runtime and handler, and the table variable's name the seed's
handler reads. The publisher is a plain function (no pattern publishes from Lambda to an existing
topic in these three), with the seed's handler, like the recorder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_solutions_constructs.aws_lambda_dynamodb import (  # type: ignore[import-not-found]
    LambdaToDynamoDB,
)
from aws_solutions_constructs.aws_sns_sqs import SnsToSqs  # type: ignore[import-not-found]
from aws_solutions_constructs.aws_sqs_lambda import SqsToLambda  # type: ignore[import-not-found]
from constructs import Construct

from audit_stack import outputs
from bench.peers.app import SOLUTIONS_PACKAGES_STACK_NAME

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "original" / "functions"
# The seed's recorder reads its table's name from this variable.
TABLE_VARIABLE = "TABLE_NAME"


class SolutionsConstructsPackagesStack(cdk.Stack):
    """SNS -> SQS (+DLQ) -> Lambda -> DynamoDB from the three patterns' own code."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        code = lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=["**/__pycache__"])
        sns_sqs = SnsToSqs(self, "SnsToSqs")
        recorder_side = LambdaToDynamoDB(
            self,
            "LambdaToDynamoDB",
            lambda_function_props=lambda_.FunctionProps(
                runtime=lambda_.Runtime.PYTHON_3_14,
                code=code,
                handler="handler.record_deleted_account_info",
            ),
            table_environment_variable_name=TABLE_VARIABLE,
        )
        SqsToLambda(
            self,
            "SqsToLambda",
            existing_queue_obj=sns_sqs.sqs_queue,
            existing_lambda_obj=recorder_side.lambda_function,
        )
        publisher = lambda_.Function(
            self,
            "PublisherFunction",
            runtime=lambda_.Runtime.PYTHON_3_14,
            code=code,
            handler="handler.delete_account",
            environment={"TOPIC_ARN": sns_sqs.sns_topic.topic_arn},
        )
        sns_sqs.sns_topic.grant_publish(publisher)
        values = {
            outputs.TOPIC_ARN: sns_sqs.sns_topic.topic_arn,
            outputs.QUEUE_URL: sns_sqs.sqs_queue.queue_url,
            outputs.DEAD_LETTER_QUEUE_URL: sns_sqs.dead_letter_queue.queue.queue_url,
            outputs.TABLE_NAME: recorder_side.dynamo_table.table_name,
            outputs.PUBLISHER_FUNCTION_NAME: publisher.function_name,
            outputs.RECORDER_FUNCTION_NAME: recorder_side.lambda_function.function_name,
        }
        for output_id, value in values.items():
            cdk.CfnOutput(self, output_id, value=value)


def main(outdir: str) -> None:
    """Write the peer's cloud assembly into ``outdir``."""
    app = cdk.App(outdir=outdir)
    SolutionsConstructsPackagesStack(app, SOLUTIONS_PACKAGES_STACK_NAME)
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1])
