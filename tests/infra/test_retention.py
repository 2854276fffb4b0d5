"""Retention (issue 18 item 1) on the template: the audit table's TTL, the recorder's
RETENTION_DAYS, ``-c retention_days`` for AuditStack, the synthesis warning without one, and the
rules a retention period must follow."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template

from audit_stack import AuditPipeline, AuditStack
from audit_stack.lambda_code import contract
from tests.cdk_app import new_app

pytestmark = pytest.mark.synth  # in-process CDK apps: `make test`, not `make unit`

ENV = cdk.Environment(account="111122223333", region="eu-west-1")
_NO_RETENTION = "audit-pipeline:noRetention"


def _tables(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each DynamoDB table's properties, by logical id."""
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }


def _audit_table(template: dict[str, Any]) -> dict[str, Any]:
    (table,) = [
        properties
        for properties in _tables(template).values()
        if properties["KeySchema"][0]["AttributeName"] == contract.PARTITION_KEY
    ]
    return table


def _digest_table(template: dict[str, Any]) -> dict[str, Any]:
    (table,) = [
        properties
        for properties in _tables(template).values()
        if properties["KeySchema"][0]["AttributeName"] == contract.DIGEST_PARTITION_KEY
    ]
    return table


def _environment(template: dict[str, Any], handler_module: str) -> dict[str, Any]:
    (variables,) = [
        resource["Properties"]["Environment"]["Variables"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"].get("Handler", "").startswith(handler_module)
    ]
    return dict(variables)


def _template(stack: cdk.Stack) -> dict[str, Any]:
    return dict(Template.from_stack(stack).to_json())


def _warnings(stack: cdk.Stack) -> list[str]:
    return [
        str(message.entry.data)
        for message in Annotations.from_stack(stack).find_warning("*", Match.any_value())
    ]


def test_retention_expires_records_by_ttl_and_tells_the_recorder_its_days() -> None:
    stack = cdk.Stack(new_app(), "Kept", env=ENV)
    AuditPipeline(stack, "Audit", retention=cdk.Duration.days(2557))
    template = _template(stack)

    assert _audit_table(template)["TimeToLiveSpecification"] == {
        "AttributeName": contract.EXPIRES_AT_ATTRIBUTE,
        "Enabled": True,
    }
    # The chain outlives the records: a digest removed would break every later link.
    assert "TimeToLiveSpecification" not in _digest_table(template)
    recorder = _environment(template, "audit_events.record_audit_event")
    assert recorder[contract.ENV_RETENTION_DAYS] == "2557"
    # Only the recorder writes expires_at; the sealer reads it from the items it seals.
    assert contract.ENV_RETENTION_DAYS not in _environment(template, "audit_events.seal_records")
    # Point-in-time recovery stays on (35 days of deleted records: README, Retention).
    assert _audit_table(template)["PointInTimeRecoverySpecification"] == {
        "PointInTimeRecoveryEnabled": True
    }
    assert not [w for w in _warnings(stack) if _NO_RETENTION in w or "no retention" in w]


def test_without_retention_records_are_kept_with_no_ttl_and_synthesis_warns() -> None:
    stack = cdk.Stack(new_app(), "Forever", env=ENV)
    AuditPipeline(stack, "Audit")
    template = _template(stack)

    assert "TimeToLiveSpecification" not in _audit_table(template)
    recorder = _environment(template, "audit_events.record_audit_event")
    assert contract.ENV_RETENTION_DAYS not in recorder
    Annotations.from_stack(stack).has_warning(
        "/Forever/Audit",
        Match.string_like_regexp(r"has no retention: records are kept for the life of the table"),
    )


def test_audit_stack_takes_retention_days_from_the_context() -> None:
    stack = AuditStack(new_app(context={"retention_days": "365"}), "Audit", env=ENV)
    template = _template(stack)

    assert _audit_table(template)["TimeToLiveSpecification"]["Enabled"] is True
    assert _environment(template, "audit_events.record_audit_event")[
        contract.ENV_RETENTION_DAYS
    ] == ("365")
    assert not [w for w in _warnings(stack) if "has no retention" in w]


@pytest.mark.parametrize("value", ["seven", "1.5", "-3", True])
def test_a_retention_days_context_that_is_not_whole_days_is_refused_by_name(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^-c retention_days: must be a whole number of days"):
        AuditStack(new_app(context={"retention_days": value}), "Audit", env=ENV)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"retention": cdk.Duration.hours(36)}, "retention: must be whole days between 1 day"),
        ({"retention": cdk.Duration.hours(12)}, "retention: must be whole days between 1 day"),
        ({"retention": cdk.Duration.days(36_501)}, "retention: must be whole days between"),
        (
            {"retention": cdk.Duration.days(1), "seal_interval": cdk.Duration.days(1)},
            "retention: must be longer than seal_interval plus the sealer's 1-hour heartbeat",
        ),
        ({"retention": 30}, "retention: must be a Duration"),
    ],
)
def test_a_retention_that_breaks_a_rule_is_refused_with_its_value_and_nothing_is_created(
    props: dict[str, Any], message: str
) -> None:
    stack = cdk.Stack(new_app(), "Bad")
    with pytest.raises(ValueError, match=f"^AuditPipeline {message}.*\\(got "):
        AuditPipeline(stack, "Audit", **props)
    assert [child.node.id for child in stack.node.children] == []


def test_the_shortest_retention_is_one_day_with_the_default_seal_interval() -> None:
    stack = cdk.Stack(new_app(), "Short", env=ENV)
    AuditPipeline(stack, "Audit", retention=cdk.Duration.days(1))
    recorder = _environment(_template(stack), "audit_events.record_audit_event")
    assert recorder[contract.ENV_RETENTION_DAYS] == "1"
