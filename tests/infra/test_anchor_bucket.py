"""The anchor bucket of signed checkpoints: Object Lock, the sealer's narrow grant, and props."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from audit_stack import AuditPipeline, AuditStack
from audit_stack.construct.validation import PropsError
from audit_stack.lambda_code import contract

pytestmark = pytest.mark.synth  # in-process CDK apps: `make test`, not `make unit`

ROOT = Path(__file__).resolve().parents[2]
ENV = cdk.Environment(account="111122223333", region="eu-west-1")


def _app(**context: Any) -> cdk.App:
    flags = json.loads((ROOT / "cdk.json").read_text())["context"]
    return cdk.App(context={**flags, **context})


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(Template.from_stack(AuditStack(_app(), "Audit", env=ENV)).to_json())


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def _sealer(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for logical_id, function in _of_type(template, "AWS::Lambda::Function").items():
        if "SealerFunction" in logical_id:
            return logical_id, function
    raise AssertionError("no sealer")


def _sealer_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    _, sealer = _sealer(template)
    role = sealer["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in _of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_pipeline_creates_a_locked_versioned_encrypted_private_bucket_it_keeps(
    template: dict[str, Any],
) -> None:
    ((bucket_id, bucket),) = _of_type(template, "AWS::S3::Bucket").items()
    properties = bucket["Properties"]
    assert properties["ObjectLockEnabled"] is True
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {
        "Mode": "COMPLIANCE",
        "Days": 365,
    }
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["DeletionPolicy"] == "Retain"
    (policy,) = _of_type(template, "AWS::S3::BucketPolicy").values()
    assert policy["Properties"]["Bucket"] == {"Ref": bucket_id}
    assert {
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
    }.items() <= policy["Properties"]["PolicyDocument"]["Statement"][0].items()
    assert bucket["Metadata"]["AuditPipeline"]["role"] == "anchor-bucket"


def test_the_sealer_may_only_put_new_objects_and_read_them_below_its_tables_prefix(
    template: dict[str, Any],
) -> None:
    (bucket_id,) = _of_type(template, "AWS::S3::Bucket")
    s3_statements = [
        statement
        for statement in _sealer_statements(template)
        if any(str(action).startswith("s3:") for action in _actions(statement))
    ]
    assert len(s3_statements) == 1
    (statement,) = s3_statements
    # New checkpoints and digest bodies, and the chain head's body read back: no delete, no
    # governance bypass, no bucket settings.
    assert sorted(_actions(statement)) == ["s3:GetObject", "s3:PutObject", "s3:PutObjectRetention"]
    table_id = next(i for i in _of_type(template, "AWS::DynamoDB::Table") if "Sealing" not in i)
    assert statement["Resource"] == {
        "Fn::Join": [
            "",
            [
                {"Fn::GetAtt": [bucket_id, "Arn"]},
                f"/{contract.ANCHOR_PREFIX}",
                {"Ref": table_id},
                "/*",
            ],
        ]
    }
    _, sealer = _sealer(template)
    variables = sealer["Properties"]["Environment"]["Variables"]
    assert variables[contract.ENV_ANCHOR_BUCKET] == {"Ref": bucket_id}
    assert variables[contract.ENV_ANCHOR_RETENTION_DAYS] == "365"
    assert variables[contract.ENV_SEAL_INTERVAL_SECONDS] == "300"


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def test_an_existing_bucket_from_context_is_used_and_none_is_created() -> None:
    stack = AuditStack(_app(anchor_bucket_name="audit-anchors-elsewhere"), "Audit", env=ENV)
    template = dict(Template.from_stack(stack).to_json())
    assert _of_type(template, "AWS::S3::Bucket") == {}
    _, sealer = _sealer(template)
    variables = sealer["Properties"]["Environment"]["Variables"]
    assert variables[contract.ENV_ANCHOR_BUCKET] == "audit-anchors-elsewhere"
    resource = json.dumps(
        [s["Resource"] for s in _sealer_statements(template) if "s3:PutObject" in _actions(s)]
    )
    assert "arn:" in resource and "audit-anchors-elsewhere/checkpoints/" in resource


def test_anchor_retention_sets_the_lock_and_must_be_whole_days() -> None:
    stack = cdk.Stack(_app(), "Other", env=ENV)
    AuditPipeline(stack, "Audit", anchor_retention=cdk.Duration.days(2555))
    template = dict(Template.from_stack(stack).to_json())
    _, sealer = _sealer(template)
    assert sealer["Properties"]["Environment"]["Variables"]["ANCHOR_RETENTION_DAYS"] == "2555"
    with pytest.raises(PropsError, match="anchor_retention: must be whole days"):
        AuditPipeline(cdk.Stack(_app(), "Bad"), "Audit", anchor_retention=cdk.Duration.hours(5))
    with pytest.raises(PropsError, match=r"anchor_bucket: must be an s3\.IBucket"):
        AuditPipeline(
            cdk.Stack(_app(), "Bad2"),
            "Audit",
            anchor_bucket="a-bucket-name",  # type: ignore[arg-type]
        )


def test_grant_verify_reads_every_checkpoint_version_and_nothing_is_writable() -> None:
    stack = cdk.Stack(_app(), "Verify", env=ENV)
    pipeline = AuditPipeline(stack, "Audit")
    role = cdk.aws_iam.Role(
        stack, "Auditor", assumed_by=cdk.aws_iam.AccountPrincipal("111122223333")
    )
    pipeline.grant_verify(role)
    template = dict(Template.from_stack(stack).to_json())
    actions = {
        action
        for policy in _of_type(template, "AWS::IAM::Policy").values()
        if any("Auditor" in json.dumps(r) for r in policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in _actions(statement)
        if action.startswith("s3:")
    }
    assert actions == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListBucket",
        "s3:ListBucketVersions",
    }


def _documented_cross_account_policy() -> dict[str, list[str]]:
    """The bucket policy docs/INTEGRITY.md gives for a bucket in another account: actions by Sid."""
    text = (ROOT / "docs" / "INTEGRITY.md").read_text()
    start = text.index("**A bucket in another account**")
    block = text[text.index("```json\n", start) + len("```json\n") :]
    policy = json.loads(block[: block.index("```")])
    return {
        statement["Sid"]: sorted(_actions(statement))
        for statement in policy["Statement"]
        if statement["Effect"] == "Allow"
    }


def test_the_documented_cross_account_bucket_policy_allows_what_the_grants_use(
    template: dict[str, Any],
) -> None:
    """Across accounts the bucket's policy must allow what the sealer's and the auditors' own
    policies use: a documented policy short of an action breaks sealing (or verify) there."""
    documented = _documented_cross_account_policy()
    sealer = sorted(
        action
        for statement in _sealer_statements(template)
        for action in _actions(statement)
        if action.startswith("s3:")
    )
    assert documented["TheAuditSealerAddsCheckpoints"] == sealer
    stack = cdk.Stack(_app(), "Verify", env=ENV)
    pipeline = AuditPipeline(stack, "Audit")
    role = cdk.aws_iam.Role(stack, "Auditor", assumed_by=cdk.aws_iam.AccountPrincipal(ENV.account))
    pipeline.grant_verify(role)
    auditor = sorted(
        {
            action
            for policy in _of_type(
                dict(Template.from_stack(stack).to_json()), "AWS::IAM::Policy"
            ).values()
            if any("Auditor" in json.dumps(r) for r in policy["Properties"]["Roles"])
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            for action in _actions(statement)
            if action.startswith("s3:")
        }
    )
    assert documented["AuditorsReadEveryVersion"] == auditor
