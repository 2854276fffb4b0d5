"""The intrinsic resolver and the deployment order, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from audit_stack.local.deploy.template import (
    DeploymentError,
    PhysicalResource,
    Resolver,
    TemplateResource,
    deployment_order,
    references,
)

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Stage": {"Type": "String", "Default": "test"},
        "NoDefault": {"Type": "String"},
        "FromSsm": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/x/y"},
    },
    "Conditions": {
        "IsTest": {"Fn::Equals": [{"Ref": "Stage"}, "test"]},
        "IsProd": {"Fn::Not": [{"Condition": "IsTest"}]},
    },
    "Mappings": {"Sizes": {"test": {"Memory": 256}}},
}


@pytest.fixture
def resolver() -> Resolver:
    resolver = Resolver(TEMPLATE, region="eu-west-1", account_id="123456789012", stack_name="S")
    resolver.deployed["Queue"] = PhysicalResource(
        "https://queue", {"Arn": "arn:aws:sqs:eu-west-1:123456789012:q", "QueueName": "q"}
    )
    return resolver


def test_ref_answers_pseudo_parameters_parameters_and_deployed_resources(
    resolver: Resolver,
) -> None:
    assert resolver.resolve({"Ref": "AWS::Region"}) == "eu-west-1"
    assert resolver.resolve({"Ref": "AWS::AccountId"}) == "123456789012"
    assert resolver.resolve({"Ref": "Stage"}) == "test"
    assert resolver.resolve({"Ref": "Queue"}) == "https://queue"


def test_get_att_in_both_spellings(resolver: Resolver) -> None:
    assert resolver.resolve({"Fn::GetAtt": ["Queue", "Arn"]}).endswith(":q")
    assert resolver.resolve({"Fn::GetAtt": "Queue.QueueName"}) == "q"


def test_sub_replaces_refs_attributes_variables_and_keeps_escapes(resolver: Resolver) -> None:
    text = "${AWS::Region}/${Queue}/${Queue.QueueName}/${Name}/${!Literal}"

    assert resolver.resolve({"Fn::Sub": [text, {"Name": {"Ref": "Stage"}}]}) == (
        "eu-west-1/https://queue/q/test/${Literal}"
    )


def test_join_select_split_and_mappings(resolver: Resolver) -> None:
    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}) == "a-test"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}) == "y"
    assert resolver.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]}) == 256


def test_conditions_and_if_and_no_value(resolver: Resolver) -> None:
    assert resolver.condition("IsTest") is True
    assert resolver.condition("IsProd") is False
    assert resolver.resolve({"Fn::If": ["IsProd", "big", "small"]}) == "small"
    assert resolver.resolve({"A": 1, "B": {"Ref": "AWS::NoValue"}}) == {"A": 1}
    assert resolver.resolve([1, {"Ref": "AWS::NoValue"}, 2]) == [1, 2]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Ref": "NoDefault"}, "has no Default"),
        ({"Ref": "FromSsm"}, "SSM Parameter Store"),
        ({"Ref": "Later"}, "not deployed"),
        ({"Fn::GetAtt": ["Queue", "Missing"]}, r"Queue.Missing is not available"),
        ({"Fn::ImportValue": "shared"}, "no stack deployed locally exports it"),
    ],
)
def test_what_cannot_be_resolved_locally_is_an_error_naming_it(
    resolver: Resolver, value: Any, message: str
) -> None:
    with pytest.raises(DeploymentError, match=message):
        resolver.resolve(value)


def resource(logical_id: str, properties: Any = None, depends_on: tuple[str, ...] = ()) -> Any:
    return TemplateResource(logical_id, "AWS::X::Y", properties or {}, depends_on, None)


def test_references_finds_refs_get_atts_and_sub_variables() -> None:
    fragment = {
        "A": {"Ref": "Topic"},
        "B": [{"Fn::GetAtt": ["Queue", "Arn"]}, {"Fn::GetAtt": "Table.Arn"}],
        "C": {"Fn::Sub": ["${Function.Arn}/${Var}/${!Escaped}", {"Var": {"Ref": "Key"}}]},
    }

    assert references(fragment) == {"Topic", "Queue", "Table", "Function", "Var", "Key"}


def test_each_resource_comes_after_what_it_refers_to_or_depends_on() -> None:
    resources = [
        resource("Mapping", {"Queue": {"Fn::GetAtt": ["Queue", "Arn"]}, "F": {"Ref": "Fn"}}),
        resource("Fn", {"Role": {"Fn::GetAtt": ["Role", "Arn"]}}, depends_on=("Policy",)),
        resource("Policy", {"Roles": [{"Ref": "Role"}]}),
        resource("Queue"),
        resource("Role"),
    ]

    order = [item.logical_id for item in deployment_order(resources)]

    assert order.index("Role") < order.index("Policy") < order.index("Fn") < order.index("Mapping")
    assert order.index("Queue") < order.index("Mapping")
    assert sorted(order) == sorted(item.logical_id for item in resources)


def test_a_dependency_cycle_is_an_error_showing_the_cycle() -> None:
    resources = [resource("A", {"x": {"Ref": "B"}}), resource("B", depends_on=("A",))]

    with pytest.raises(DeploymentError, match="A -> B -> A"):
        deployment_order(resources)
