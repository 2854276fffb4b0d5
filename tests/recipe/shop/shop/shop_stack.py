"""The shop's own resources (a bucket, the billing service's function) and its audit logs: one
pipeline for account deletions, one for billing events with a schema for their details."""

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from audit_stack import AuditPipeline, EventType

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"

INVOICE_VOIDED = EventType(
    "InvoiceVoided",
    details_schema={
        "type": "object",
        "properties": {
            "invoice_id": {"type": "string", "pattern": "^INV-[0-9]+$"},
            "reason": {"enum": ["duplicate", "fraud", "customer request"]},
        },
        "required": ["invoice_id", "reason"],
        "additionalProperties": False,
    },
)


class ShopStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, audit_key: kms.IKey, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # The shop's own bucket: nothing to do with auditing.
        s3.Bucket(
            self,
            "Receipts",
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
        )
        # The billing service's function, on the runtime the shop already uses.
        void_invoice = lambda_.Function(
            self,
            "VoidInvoice",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(FUNCTIONS / "void_invoice")),
            timeout=cdk.Duration.seconds(10),
        )

        AuditPipeline(self, "AccountAudit")  # AccountDeleted, with its deleteAccount function
        billing = AuditPipeline(
            self, "BillingAudit", event_types=[INVOICE_VOIDED], encryption_key=audit_key
        )
        billing.add_publisher(void_invoice)

        # Billing's operators read the billing log (audit trail/events/verify) and may void an
        # invoice by hand.
        operator = iam.Role(
            self,
            "BillingOperator",
            assumed_by=iam.AccountRootPrincipal(),
            description="Billing operators: read the billing audit log, void invoices",
        )
        billing.grant_read(operator)
        void_invoice.grant_invoke(operator)
