#!/usr/bin/env python3
"""The CDK app behind `cdk synth` / `cdk deploy`: one AuditStack, checked by cdk-nag."""

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from audit_stack import AuditStack

app = cdk.App()
AuditStack(
    app,
    "AuditPipelineStack",
    description="Serverless audit pipeline: SNS -> SQS (+DLQ) -> Lambda -> DynamoDB",
)
# Synthesis fails on any unacknowledged AwsSolutions finding.
cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
app.synth()
