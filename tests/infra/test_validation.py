"""AuditPipeline's props are checked before any child exists: every problem at once, each with
its bad value; unresolved tokens pass to deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from audit_stack import AuditPipeline
from audit_stack.construct import PropsError
from audit_stack.construct.props import PROPS, props_from_context, readme_table
from audit_stack.construct.validation import RULES, Rule, validate_props
from tests.cdk_app import new_app

pytestmark = pytest.mark.synth  # in-process CDK apps: `make test`, not `make unit`


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"max_receive_count": 0}, "max_receive_count: must be between 1 and 1000"),
        ({"batch_size": 11}, "batch_size: must be between 1 and 10 without a max_batching_window"),
        (
            {"batch_size": 10_001, "max_batching_window": cdk.Duration.seconds(1)},
            "batch_size: must be between 1 and 10000",
        ),
        ({"max_batching_window": cdk.Duration.minutes(6)}, "max_batching_window: must be at most"),
        ({"max_concurrency": 1}, "max_concurrency: must be between 2 and 1000"),
        ({"recorder_timeout": cdk.Duration.minutes(3)}, "recorder_timeout: must be between"),
        ({"event_types": []}, "event_types: must name at least one event type"),
        ({"event_types": "AccountDeleted"}, "event_types: must be a list of event type names, not"),
        ({"event_types": ["account deleted"]}, "event_types: 'account deleted' must match"),
        (
            {"oldest_message_age_alarm": cdk.Duration.seconds(30)},
            "oldest_message_age_alarm: must be at least 1 minute",
        ),
        ({"seal_interval": cdk.Duration.seconds(30)}, "seal_interval: must be whole minutes"),
        ({"seal_interval": cdk.Duration.seconds(90)}, "seal_interval: must be whole minutes"),
        ({"seal_interval": cdk.Duration.days(2)}, "seal_interval: must be whole minutes"),
        (
            {"event_type_index_shards": 0},
            "event_type_index_shards: must be a whole number between 1 and 256 \\(got 0\\)",
        ),
        ({"event_type_index_shards": 257}, "event_type_index_shards: must be a whole number"),
        ({"event_type_index_shards": True}, "event_type_index_shards: must be a whole number"),
    ],
)
def test_bad_props_fail_with_a_clear_message_and_leave_nothing_behind(
    props: dict[str, Any], message: str
) -> None:
    app = new_app()
    stack = cdk.Stack(app, "Bad")
    with pytest.raises(ValueError, match=f"AuditPipeline {message}"):
        AuditPipeline(stack, "Audit", **props)
    assert [c.node.id for c in stack.node.children] == []


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"recorder_timeout": 30}, "recorder_timeout: must be a Duration"),
        ({"max_batching_window": 5}, "max_batching_window: must be a Duration"),
        ({"oldest_message_age_alarm": 900}, "oldest_message_age_alarm: must be a Duration"),
        ({"max_receive_count": "5"}, "max_receive_count: must be a whole number, not str"),
        ({"batch_size": 2.5}, "batch_size: must be a whole number, not float"),
        ({"max_concurrency": True}, "max_concurrency: must be a whole number, not bool"),
        ({"removal_policy": "DESTROY"}, "removal_policy: must be a RemovalPolicy"),
        ({"log_retention": 365}, "log_retention: must be a logs.RetentionDays"),
        ({"encryption_key": "alias/mine"}, "encryption_key: must be a kms.IKey"),
        ({"dashboard": "yes"}, "dashboard: must be True or False"),
        (
            {"event_types": 7},
            "event_types: must be a list of event type names or EventType entries, not int",
        ),
    ],
)
def test_props_of_the_wrong_type_get_the_documented_value_error_and_leave_nothing(
    props: dict[str, Any], message: str
) -> None:
    stack = cdk.Stack(new_app(), "Bad")
    with pytest.raises(ValueError, match=f"^AuditPipeline {message}"):
        AuditPipeline(stack, "Audit", **props)
    assert [c.node.id for c in stack.node.children] == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "accounts: give accounts, an organization_id, or both"),
        ({"accounts": "222222222222"}, "accounts: must be a list of account ids"),
        ({"accounts": ["2222"]}, "accounts: each must be a 12-digit AWS account id"),
        ({"organization_id": "my-org"}, "organization_id: must look like o-"),
    ],
)
def test_allow_publishers_rejects_bad_arguments_and_adds_nothing(
    arguments: dict[str, Any], message: str
) -> None:
    stack = cdk.Stack(new_app(), "Publishers")
    pipeline = AuditPipeline(stack, "Audit")
    before = len(pipeline.node.find_all())
    with pytest.raises(ValueError, match=f"^AuditPipeline allow_publishers {message}"):
        pipeline.allow_publishers(**arguments)
    assert len(pipeline.node.find_all()) == before


def test_the_readme_props_table_is_the_one_the_declarations_print() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme_table()

    assert table in readme, (
        "README's props table differs from AuditPipelineProps: paste the output of "
        "`python -m audit_stack.construct.props` over it"
    )
    assert readme.count("| prop | default | meaning |") == 1


def test_omitted_props_get_their_declared_defaults_and_each_default_passes_the_rules() -> None:
    values = validate_props({})

    assert values == {name: prop.default for name, prop in PROPS.items()}
    assert values["recorder_timeout"].to_seconds() == 30
    assert values["event_type_index_shards"] == 16


def test_a_none_prop_means_its_default() -> None:
    values = validate_props({"recorder_timeout": None, "encryption_key": None})

    assert values["recorder_timeout"].to_seconds() == 30
    assert values["encryption_key"] is None


def test_a_name_that_is_no_prop_is_refused_with_the_closest_prop_and_nothing_is_created() -> None:
    stack = cdk.Stack(new_app(), "Bad")
    with pytest.raises(PropsError) as raised:
        AuditPipeline(stack, "Audit", max_recieve_count=3)  # type: ignore[call-arg]

    assert str(raised.value) == (
        "AuditPipeline max_recieve_count: is not an AuditPipeline prop "
        "(did you mean max_receive_count?)"
    )
    assert [c.node.id for c in stack.node.children] == []


def test_a_rule_on_an_undeclared_prop_fails_when_the_table_is_built() -> None:
    with pytest.raises(ValueError, match="Rule on 'retention_days': no such prop"):
        Rule("retention_days", "must be positive", lambda props: False)


def test_every_prop_of_the_rules_table_is_declared_with_a_kind_and_a_meaning() -> None:
    assert {rule.prop for rule in RULES} <= set(PROPS)
    for name, prop in PROPS.items():
        assert prop.meaning, name
        assert prop.kind.accepts(prop.default) or prop.default is None, name


def test_audit_stack_sets_a_prop_from_its_context_key_and_pipeline_props_win() -> None:
    app = new_app(context={"anchor_bucket_name": "audit-anchors-elsewhere"})
    stack = cdk.Stack(app, "Context")

    props = props_from_context(stack)

    assert list(props) == ["anchor_bucket"]
    bucket = props["anchor_bucket"]
    assert bucket is not None
    assert stack.resolve(bucket.bucket_name) == "audit-anchors-elsewhere"
    assert props_from_context(cdk.Stack(new_app(), "NoContext")) == {}


def test_every_bad_prop_is_reported_at_once_with_its_value_and_nothing_is_created() -> None:
    stack = cdk.Stack(new_app(), "Bad")
    with pytest.raises(PropsError) as raised:
        AuditPipeline(
            stack,
            "Audit",
            max_receive_count=0,
            recorder_timeout=30,  # type: ignore[arg-type]
            event_types=["account deleted"],
            seal_interval=cdk.Duration.seconds(90),
        )

    assert [prop for prop, _ in raised.value.problems] == [
        "max_receive_count",
        "recorder_timeout",
        "event_types",
        "seal_interval",
    ]
    assert str(raised.value).splitlines() == [
        "AuditPipeline max_receive_count: must be between 1 and 1000 (got 0)",
        "AuditPipeline recorder_timeout: must be a Duration (e.g. Duration.seconds(30)), not int "
        "(got 30)",
        "AuditPipeline event_types: 'account deleted' must match ^[A-Z][A-Za-z0-9]{0,63}$ (e.g. "
        "InvoiceVoided)",
        "AuditPipeline seal_interval: must be whole minutes between 1 minute and 1 day "
        "(got 1 minute 30 seconds)",
    ]
    assert [c.node.id for c in stack.node.children] == []


def test_a_prop_of_the_wrong_type_hides_only_the_rules_that_depend_on_it() -> None:
    # With a window of the wrong type, a batch of 20 may be right: only the window is reported.
    stack = cdk.Stack(new_app(), "Bad")
    with pytest.raises(PropsError) as raised:
        AuditPipeline(stack, "Audit", batch_size=20, max_batching_window=5)  # type: ignore[arg-type]

    assert [prop for prop, _ in raised.value.problems] == ["max_batching_window"]


def test_unresolved_tokens_pass_validation_and_reach_the_template() -> None:
    stack = cdk.Stack(new_app(), "Tokens")
    receives = cdk.CfnParameter(stack, "MaxReceiveCount", type="Number", default=5)
    shards = cdk.CfnParameter(stack, "Shards", type="Number", default=16)

    AuditPipeline(
        stack,
        "Audit",
        max_receive_count=receives.value_as_number,  # type: ignore[arg-type]
        event_type_index_shards=shards.value_as_number,  # type: ignore[arg-type]
    )

    queues = Template.from_stack(stack).find_resources(
        "AWS::SQS::Queue",
        {"Properties": {"RedrivePolicy": {"maxReceiveCount": {"Ref": "MaxReceiveCount"}}}},
    )
    assert len(queues) == 1


def test_allow_publishers_reports_every_bad_argument_at_once() -> None:
    stack = cdk.Stack(new_app(), "Publishers")
    pipeline = AuditPipeline(stack, "Audit")
    with pytest.raises(PropsError) as raised:
        pipeline.allow_publishers(accounts=["2222", "222222222222"], organization_id="my-org")

    assert str(raised.value).splitlines() == [
        "AuditPipeline allow_publishers accounts: each must be a 12-digit AWS account id "
        "(got ['2222'])",
        "AuditPipeline allow_publishers organization_id: must look like o-abc123def4 "
        "(got 'my-org')",
    ]
