"""Condition operators and keys as the IAM JSON policy reference documents them.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
"""

from __future__ import annotations

from typing import Any

import pytest

from audit_stack.iam import Decision, Request, evaluate

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Recorder"
OTHER = f"arn:aws:iam::{ACCOUNT}:role/Administrator"
TABLE = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/Audit"
FUNCTION = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:recorder"


def holds(condition: dict[str, Any], context: dict[str, Any], principal: str = ROLE) -> bool:
    """Whether an Allow statement with ``condition`` applies to a request with ``context``."""
    statement = {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition}
    request = Request(principal, "dynamodb:PutItem", TABLE, context)
    evaluation = evaluate(request, identity_policies=[{"Statement": [statement]}])
    return evaluation.decision is Decision.ALLOWED


@pytest.mark.parametrize(
    ("operator", "value", "actual", "expected"),
    [
        ("StringEquals", "abc", "abc", True),
        ("StringEquals", "abc", "ABC", False),
        ("StringEquals", ["x", "abc"], "abc", True),  # OR across the values
        ("StringNotEquals", "abc", "abd", True),
        ("StringNotEquals", ["abc", "abd"], "abd", False),
        ("StringEqualsIgnoreCase", "abc", "ABC", True),
        ("StringNotEqualsIgnoreCase", "abc", "ABC", False),
        ("StringLike", "arn:*:role/Rec?rder", "arn:aws:iam::1:role/Recorder", True),
        ("StringLike", "a*c", "abd", False),
        ("StringNotLike", "a*", "bcd", True),
        ("ArnEquals", ROLE, ROLE, True),
        ("ArnLike", f"arn:aws:iam::{ACCOUNT}:role/*", ROLE, True),
        ("ArnLike", "arn:aws:iam::*:role/Rec*", ROLE, True),
        ("ArnNotEquals", OTHER, ROLE, True),
        ("ArnNotLike", f"arn:aws:iam::{ACCOUNT}:*", ROLE, False),
        ("Bool", "true", "true", True),
        ("Bool", True, "true", True),
        ("Bool", "false", "true", False),
        ("NumericLessThan", "10", "9", True),
        ("NumericGreaterThanEquals", "10", "9", False),
        ("NumericEquals", "10", "ten", False),  # a value of the wrong type does not match
        ("DateLessThan", "2030-01-01T00:00:00Z", "2026-12-05T08:00:00Z", True),
        ("DateGreaterThan", "2030-01-01T00:00:00Z", "2026-12-05T08:00:00Z", False),
        ("IpAddress", "10.0.0.0/8", "10.1.2.3", True),
        ("NotIpAddress", "10.0.0.0/8", "10.1.2.3", False),
    ],
)
def test_each_operator_compares_as_documented(
    operator: str, value: Any, actual: str, expected: bool
) -> None:
    """Condition operators: string, ARN, Boolean, numeric, date and IP address operators."""
    assert holds({operator: {"aws:test": value}}, {"aws:test": actual}) is expected


def test_condition_keys_are_case_insensitive() -> None:
    """Condition element: "Condition key names are not case-sensitive".
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html
    """
    assert holds({"StringEquals": {"AWS:SOURCEACCOUNT": ACCOUNT}}, {"aws:SourceAccount": ACCOUNT})


def test_a_missing_key_fails_a_positive_operator_and_satisfies_a_negated_one() -> None:
    """Condition operators: "If the key that you specify in a policy condition is not present
    in the request context, the values do not match" — a negated operator then holds."""
    assert not holds({"ArnEquals": {"aws:SourceArn": "arn:aws:sns:*"}}, {})
    assert holds({"ArnNotEquals": {"aws:SourceArn": "arn:aws:sns:*"}}, {})
    assert holds({"StringNotLike": {"aws:SourceArn": "x*"}}, {})


def test_if_exists_holds_when_the_key_is_missing_and_compares_when_present() -> None:
    """...IfExists condition operators: "If the policy key is present in the context of the
    request, process the key as specified in the policy. If the key is not present, evaluate
    the condition element as true"."""
    condition = {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}
    assert holds(condition, {})
    assert holds(condition, {"aws:SourceAccount": ACCOUNT})
    assert not holds(condition, {"aws:SourceAccount": "999999999999"})


def test_null_checks_whether_the_key_is_present() -> None:
    """Condition operator to check existence of condition keys (Null)."""
    assert holds({"Null": {"lambda:SourceFunctionArn": "true"}}, {})
    assert not holds(
        {"Null": {"lambda:SourceFunctionArn": "true"}}, {"lambda:SourceFunctionArn": FUNCTION}
    )
    assert holds(
        {"Null": {"lambda:SourceFunctionArn": "false"}}, {"lambda:SourceFunctionArn": FUNCTION}
    )


def test_for_any_value_needs_one_request_value_to_match() -> None:
    """Multivalued context keys: ForAnyValue "returns true if any one of the key values in the
    request matches any one of the condition values"; false when the key is missing.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
    """
    condition = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team", "cost"]}}
    assert holds(condition, {"aws:TagKeys": ["name", "cost"]})
    assert not holds(condition, {"aws:TagKeys": ["name"]})
    assert not holds(condition, {})


def test_for_all_values_needs_every_request_value_to_match() -> None:
    """Multivalued context keys: ForAllValues "returns true if every key value in the request
    matches at least one value in the policy", and true when the key is missing."""
    condition = {"ForAllValues:StringLike": {"aws:TagKeys": ["team*", "cost"]}}
    assert holds(condition, {"aws:TagKeys": ["team-a", "cost"]})
    assert not holds(condition, {"aws:TagKeys": ["team-a", "name"]})
    assert holds(condition, {})


def test_conditions_are_anded_across_operators_and_keys() -> None:
    """Condition element: "If you specify multiple condition operators, or multiple keys ...
    the conditions are evaluated using a logical AND"."""
    condition = {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": "arn:aws:sns:*:*:events"},
    }
    both = {
        "aws:SourceAccount": ACCOUNT,
        "aws:SourceArn": f"arn:aws:sns:eu-west-1:{ACCOUNT}:events",
    }
    assert holds(condition, both)
    assert not holds(condition, {**both, "aws:SourceAccount": "999999999999"})


def test_principal_arn_and_account_come_from_the_caller() -> None:
    """Global condition keys: aws:PrincipalArn and aws:PrincipalAccount are the caller's.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
    """
    assert holds({"ArnEquals": {"aws:PrincipalArn": ROLE}}, {})
    assert not holds({"ArnEquals": {"aws:PrincipalArn": ROLE}}, {}, principal=OTHER)
    assert holds({"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, {})


def test_a_writer_condition_on_source_function_arn_admits_only_that_functions_calls() -> None:
    """lambda:SourceFunctionArn: set on calls made by a function's code with its execution
    role's credentials (not on the event source mapping's polling).
    https://docs.aws.amazon.com/lambda/latest/dg/permissions-source-function-arn.html
    """
    condition = {"ArnEquals": {"lambda:SourceFunctionArn": FUNCTION}}
    assert holds(condition, {"lambda:SourceFunctionArn": FUNCTION})
    assert not holds(condition, {"lambda:SourceFunctionArn": FUNCTION + "2"})
    assert not holds(condition, {})


def test_secure_transport_false_triggers_a_tls_only_deny() -> None:
    """aws:SecureTransport: the usual TLS-only deny (Bool false) applies to plain HTTP only."""
    statement_deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "*",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    allow_all = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    for transport, expected in (("false", Decision.EXPLICIT_DENY), ("true", Decision.ALLOWED)):
        request = Request(ROLE, "sqs:SendMessage", TABLE, {"aws:SecureTransport": transport})
        decision = evaluate(
            request, identity_policies=[allow_all], resource_policy={"Statement": [statement_deny]}
        ).decision
        assert decision is expected
