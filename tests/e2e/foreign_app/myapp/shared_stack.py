"""What several of the app's stacks use: a customer-managed key and a layer of shared code."""

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

HERE = Path(__file__).resolve().parent.parent
AUDIT_KEY_EXPORT = "MyappAuditKeyArn"


class SharedStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.audit_key = kms.Key(
            self,
            "AuditKey",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # What the pipeline's synth warning asks of an imported key: SNS may encrypt deliveries
        # to the audit queues with it (the emulator enforces the key policy as AWS does).
        self.audit_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowSnsDeliveryToAuditQueues",
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {"aws:SourceArn": self.format_arn(service="sns", resource="*")},
                },
            )
        )
        self.greeting_layer = lambda_.LayerVersion(
            self,
            "Greeting",
            code=lambda_.Code.from_asset(str(HERE / "layers" / "greeting")),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
        )
        # Exported by name for the app's other stacks (and other apps) to import.
        cdk.CfnOutput(
            self, "AuditKeyArn", value=self.audit_key.key_arn, export_name=AUDIT_KEY_EXPORT
        )
