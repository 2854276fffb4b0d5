"""The app's own resources, and the audit pipeline beside them."""

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from audit_stack import AuditPipeline

from .shared_stack import AUDIT_KEY_EXPORT

HERE = Path(__file__).resolve().parent.parent


class MyappStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        greeting_layer: lambda_.ILayerVersion,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        uploads = s3.Bucket(
            self,
            "Uploads",
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            # A custom resource and its Node.js provider function: neither runs locally.
            auto_delete_objects=True,
        )
        thumbnailer = lambda_.Function(
            self,
            "Thumbnailer",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(HERE / "functions" / "thumbnailer")),
            layers=[greeting_layer],
            environment={"UPLOADS_BUCKET": uploads.bucket_name},
        )
        uploads.grant_read_write(thumbnailer)
        # Imports a library it does not bundle: fails on Lambda, so it must fail locally too.
        lambda_.Function(
            self,
            "Reporter",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(HERE / "functions" / "reporter")),
        )
        # The shared key, imported by its export name (Fn::ImportValue); the layer above is
        # referenced directly, which CDK synthesizes as Fn::GetStackOutput.
        audit_key = kms.Key.from_key_arn(self, "AuditKey", cdk.Fn.import_value(AUDIT_KEY_EXPORT))
        AuditPipeline(self, "Audit", encryption_key=audit_key)
