#!/usr/bin/env python3
"""The CDK app behind `cdk synth` / `cdk deploy`: one AuditStack, checked by cdk-nag."""

from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from audit_stack import AuditStack

app = cdk.App()
AuditStack(
    app,
    "AuditPipelineStack",
    description="Serverless audit pipeline: SNS -> SQS (+DLQ) -> Lambda -> DynamoDB",
)
# Synthesis fails on any unacknowledged AwsSolutions finding. cdk-nag 3 is a validation plugin;
# with the lowest supported aws-cdk-lib (`make test-lowest`), cdk-nag 2 is an aspect.
if hasattr(cdk, "Validations"):
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
else:
    aspect: Any = AwsSolutionsChecks()  # cdk-nag 2's checks are an IAspect
    cdk.Aspects.of(app).add(aspect)
app.synth()
