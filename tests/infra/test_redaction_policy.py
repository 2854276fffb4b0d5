"""Who may redact: the audit table's policy, through the project's IAM evaluator, lets exactly the
``grant_redact`` principal make exactly a redaction's UpdateItem, and nothing else changes."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from audit_stack import AuditPipeline, AuditStack
from audit_stack.construct import permissions
from audit_stack.lambda_code import contract
from tests.infra.test_integrity_controls import ACCOUNT, REGION, _app, _resource, _role_arn, decide

pytestmark = pytest.mark.synth

ADMINISTRATOR = f"arn:aws:iam::{ACCOUNT}:role/Administrator"
# What `audit redact` names in its UpdateItem (cli/redact.py, _write_stub): the key in the
# condition, the personal attributes it removes, the three it sets.
REDACTION_REQUEST = [
    contract.PARTITION_KEY,
    contract.SORT_KEY,
    *contract.PERSONAL_ATTRIBUTES,
    contract.REDACTED_AT_ATTRIBUTE,
    contract.REDACTION_REASON_ATTRIBUTE,
    contract.REDACTED_BY_ATTRIBUTE,
]


def _template(*, grant: bool) -> dict[str, Any]:
    app = _app()
    stack = cdk.Stack(app, "Audit", env=cdk.Environment(account=ACCOUNT, region=REGION))
    pipeline = AuditPipeline(stack, "Audit")
    if grant:
        role = iam.Role(stack, "BreakGlass", assumed_by=iam.AccountRootPrincipal())
        pipeline.grant_redact(role)
    return dict(Template.from_stack(stack).to_json())


@pytest.fixture(scope="module")
def granted() -> dict[str, Any]:
    return _template(grant=True)


def _table_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    _, table = _resource(template, "Table/Resource")
    return list(table["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"])


def _break_glass(template: dict[str, Any]) -> str:
    (logical_id,) = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role" and logical_id.startswith("BreakGlass")
    ]
    return f"arn:aws:iam::{ACCOUNT}:role/{logical_id}"


def _as(
    template: dict[str, Any],
    principal: str,
    action: str = "dynamodb:UpdateItem",
    *,
    attributes: list[str] | None = None,
    return_values: str | None = None,
) -> str:
    request: dict[str, Any] = {"aws:PrincipalArn": principal}
    if attributes is not None:
        request["dynamodb:Attributes"] = attributes
    if return_values is not None:
        request["dynamodb:ReturnValues"] = return_values
    return decide(
        template,
        _table_statements(template),
        action,
        ("AWS", principal),
        request,
        identity_allows=True,
    )


def test_the_break_glass_role_may_make_a_redactions_update(granted: dict[str, Any]) -> None:
    role = _break_glass(granted)
    assert _as(granted, role, attributes=REDACTION_REQUEST, return_values="NONE") == "allowed"
    assert _as(granted, role, attributes=REDACTION_REQUEST) == "allowed"


@pytest.mark.parametrize(
    "extra",
    [contract.RECORD_HASH_ATTRIBUTE, contract.EVENT_TYPE_ATTRIBUTE, contract.RECORDED_AT_ATTRIBUTE],
)
def test_an_update_naming_any_other_attribute_is_denied_even_to_the_break_glass_role(
    granted: dict[str, Any], extra: str
) -> None:
    """The record_hash above all: a stub keeps the sealed hash, so its Merkle leaf still proves
    it; the event's type and times are what remains of it."""
    role = _break_glass(granted)
    assert _as(granted, role, attributes=[*REDACTION_REQUEST, extra]) == "denied"


@pytest.mark.parametrize("returned", ["ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"])
def test_a_redaction_that_asks_for_the_items_values_back_is_denied(
    granted: dict[str, Any], returned: str
) -> None:
    role = _break_glass(granted)
    assert _as(granted, role, attributes=REDACTION_REQUEST, return_values=returned) == "denied"


def test_the_administrator_and_the_recorder_may_not_redact(granted: dict[str, Any]) -> None:
    recorder = _role_arn(granted, "RecordAuditEventFunction")
    for principal in (ADMINISTRATOR, recorder):
        assert _as(granted, principal, attributes=REDACTION_REQUEST) == "denied"


# The stub `audit redact --pseudonymise` puts under the pseudonym (cli/redact.py): the record's
# attributes without the personal ones, plus the redaction's three.
STUB_PUT = [
    contract.PARTITION_KEY,
    contract.SORT_KEY,
    contract.SUBJECT_TYPE_ATTRIBUTE,
    contract.EVENT_TYPE_ATTRIBUTE,
    contract.RECORDED_AT_ATTRIBUTE,
    contract.RECORD_HASH_ATTRIBUTE,
    contract.REDACTED_AT_ATTRIBUTE,
    contract.REDACTION_REASON_ATTRIBUTE,
    contract.REDACTED_BY_ATTRIBUTE,
]


def test_the_break_glass_role_may_move_a_record_in_clear_to_a_stub(
    granted: dict[str, Any],
) -> None:
    role = _break_glass(granted)
    assert _as(granted, role, "dynamodb:PutItem", attributes=STUB_PUT) == "allowed"
    assert _as(granted, role, "dynamodb:DeleteItem") == "allowed"


@pytest.mark.parametrize(
    ("attributes", "why"),
    [
        ([a for a in STUB_PUT if a != contract.REDACTED_AT_ATTRIBUTE], "not a stub"),
        ([*STUB_PUT, "details"], "personal content"),
        ([*STUB_PUT, contract.ACTOR_ATTRIBUTE], "personal content"),
        (None, "attributes unknown"),
    ],
)
def test_the_break_glass_role_may_put_only_stubs(
    granted: dict[str, Any], attributes: list[str] | None, why: str
) -> None:
    role = _break_glass(granted)
    assert _as(granted, role, "dynamodb:PutItem", attributes=attributes) == "denied", why


def test_the_recorder_still_appends_any_record_and_may_not_delete(granted: dict[str, Any]) -> None:
    recorder = _role_arn(granted, "RecordAuditEventFunction")
    record = [*STUB_PUT[:6], "details", contract.ACTOR_ATTRIBUTE]
    assert _as(granted, recorder, "dynamodb:PutItem", attributes=record) == "allowed"
    assert _as(granted, recorder, "dynamodb:DeleteItem") == "denied"
    assert _as(granted, ADMINISTRATOR, "dynamodb:PutItem", attributes=STUB_PUT) == "denied"
    assert _as(granted, ADMINISTRATOR, "dynamodb:DeleteItem") == "denied"


@pytest.mark.parametrize(
    "action",
    [
        "dynamodb:BatchWriteItem",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
        "dynamodb:PartiQLInsert",
    ],
)
def test_the_break_glass_role_may_not_write_otherwise(granted: dict[str, Any], action: str) -> None:
    assert _as(granted, _break_glass(granted), action, attributes=REDACTION_REQUEST) == "denied"


def test_without_grant_redact_nobody_may_update_a_record() -> None:
    template = _template(grant=False)
    statements = _table_statements(template)
    (statement,) = [s for s in statements if s.get("Sid") == "OnlyRedactorsChange"]
    assert "Condition" not in statement  # denies every principal
    assert not [s for s in statements if str(s.get("Sid")).startswith("RedactorsPut")]
    recorder = _role_arn(template, "RecordAuditEventFunction")
    for principal in (ADMINISTRATOR, recorder):
        assert _as(template, principal, attributes=REDACTION_REQUEST) == "denied"
        assert _as(template, principal, "dynamodb:DeleteItem") == "denied"
    assert _as(template, recorder, "dynamodb:PutItem", attributes=STUB_PUT) == "allowed"


def test_grant_redact_allows_the_role_the_reads_the_update_the_entry_and_the_lookup(
    granted: dict[str, Any],
) -> None:
    role_id = _break_glass(granted).rsplit("/", 1)[1]
    actions: set[str] = set()
    for resource in granted["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if {"Ref": role_id} not in resource["Properties"]["Roles"]:
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    assert set(permissions.REDACT_TABLE_ACTIONS) <= actions
    assert {"sns:Publish", "secretsmanager:GetSecretValue", "dynamodb:Query"} <= actions
    assert "dynamodb:BatchWriteItem" not in actions


def test_audit_stack_names_the_redactor_role_from_context() -> None:
    """`cdk deploy -c redactor_role_arn=ARN`: the table's policy lets that role redact."""
    role = f"arn:aws:iam::{ACCOUNT}:role/AuditBreakGlass"
    stack = AuditStack(
        _app(redactor_role_arn=role), "Audit", env=cdk.Environment(account=ACCOUNT, region=REGION)
    )
    template = dict(Template.from_stack(stack).to_json())
    assert _as(template, role, attributes=REDACTION_REQUEST) == "allowed"
    assert _as(template, ADMINISTRATOR, attributes=REDACTION_REQUEST) == "denied"
