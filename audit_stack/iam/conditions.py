"""IAM condition operators, applied as the IAM JSON policy reference documents them.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html

Keys are case-insensitive, values case-sensitive (except the ``IgnoreCase`` operators). A key
missing from the request makes a positive operator false and a negated one true, unless the
operator ends in ``IfExists`` (then a missing key satisfies it); ``ForAllValues`` with a missing
key is true, ``ForAnyValue`` false.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from audit_stack.iam.errors import UnsupportedPolicyError
from audit_stack.iam.matching import arn_matches, glob_matches

Context = Mapping[str, Sequence[str]]
"""Request context: lower-cased key -> its values (one for a single-valued key)."""

Compare = Callable[[str, str], bool]


def _number(text: str) -> float:
    return float(text)


def _date(text: str) -> float:
    """A date condition value: ISO 8601, or epoch seconds (both allowed by IAM)."""
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def _ip_in(actual: str, expected: str) -> bool:
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)
    except ValueError:
        return False


# Positive comparisons: (actual request value, policy value) -> matches.
_POSITIVE: dict[str, Compare] = {
    "stringequals": lambda actual, expected: actual == expected,
    "stringequalsignorecase": lambda actual, expected: actual.lower() == expected.lower(),
    "stringlike": lambda actual, expected: glob_matches(expected, actual),
    "numericequals": lambda actual, expected: _number(actual) == _number(expected),
    "numericlessthan": lambda actual, expected: _number(actual) < _number(expected),
    "numericlessthanequals": lambda actual, expected: _number(actual) <= _number(expected),
    "numericgreaterthan": lambda actual, expected: _number(actual) > _number(expected),
    "numericgreaterthanequals": lambda actual, expected: _number(actual) >= _number(expected),
    "dateequals": lambda actual, expected: _date(actual) == _date(expected),
    "datelessthan": lambda actual, expected: _date(actual) < _date(expected),
    "datelessthanequals": lambda actual, expected: _date(actual) <= _date(expected),
    "dategreaterthan": lambda actual, expected: _date(actual) > _date(expected),
    "dategreaterthanequals": lambda actual, expected: _date(actual) >= _date(expected),
    "bool": lambda actual, expected: actual.lower() == expected.lower(),
    "arnequals": arn_matches,
    "arnlike": arn_matches,
    "ipaddress": _ip_in,
}
# Negated operators: true when no policy value matches (and when the key is missing).
_NEGATED: dict[str, str] = {
    "stringnotequals": "stringequals",
    "stringnotequalsignorecase": "stringequalsignorecase",
    "stringnotlike": "stringlike",
    "numericnotequals": "numericequals",
    "datenotequals": "dateequals",
    "arnnotequals": "arnequals",
    "arnnotlike": "arnlike",
    "notipaddress": "ipaddress",
}


def policy_values(value: Any) -> list[str]:
    """A condition's values as strings (policies may write booleans and numbers bare)."""
    items = value if isinstance(value, list) else [value]
    return [
        ("true" if item else "false") if isinstance(item, bool) else str(item) for item in items
    ]


def check_operator(operator: str) -> None:
    """Raise UnsupportedPolicyError for an operator this evaluator does not know."""
    _parse(operator)


def _parse(operator: str) -> tuple[str | None, str, bool]:
    """(set operator or None, base operator lower-cased, IfExists)."""
    qualifier: str | None = None
    name = operator
    if ":" in name:
        prefix, name = name.split(":", 1)
        qualifier = prefix.lower()
        if qualifier not in {"foranyvalue", "forallvalues"}:
            raise UnsupportedPolicyError(f"condition operator {operator!r}: unknown set operator")
    base = name.lower()
    if_exists = base.endswith("ifexists")
    if if_exists:
        base = base[: -len("ifexists")]
    if base != "null" and base not in _POSITIVE and base not in _NEGATED:
        raise UnsupportedPolicyError(f"condition operator {operator!r} is not supported")
    if base == "null" and (if_exists or qualifier):
        raise UnsupportedPolicyError(f"condition operator {operator!r} is not valid IAM")
    return qualifier, base, if_exists


def _value_matches(base: str, actual: str, expected: Sequence[str]) -> bool:
    """One request value against a condition's values (OR across them)."""
    if base in _NEGATED:
        compare = _POSITIVE[_NEGATED[base]]
        return not any(_safe(compare, actual, value) for value in expected)
    compare = _POSITIVE[base]
    return any(_safe(compare, actual, value) for value in expected)


def _safe(compare: Compare, actual: str, expected: str) -> bool:
    # A request value of the wrong type (a word for a Numeric operator) does not match.
    try:
        return compare(actual, expected)
    except ValueError:
        return False


def operator_holds(operator: str, key: str, expected_raw: Any, context: Context) -> bool:
    """Whether one ``"Operator": {"key": values}`` entry holds for the request context."""
    qualifier, base, if_exists = _parse(operator)
    expected = policy_values(expected_raw)
    actual = context.get(key.lower())
    if base == "null":
        wants_missing = expected[0].lower() == "true"
        return (actual is None or len(actual) == 0) == wants_missing
    if actual is None or len(actual) == 0:
        if if_exists:
            return True
        if qualifier == "forallvalues":
            return True
        if qualifier == "foranyvalue":
            return False
        return base in _NEGATED
    if qualifier == "forallvalues":
        return all(_value_matches(base, value, expected) for value in actual)
    if qualifier == "foranyvalue":
        return any(_value_matches(base, value, expected) for value in actual)
    # A single-valued key has one value; a multi-valued key without a set operator is read as
    # IAM does for its first value only when the policy is wrong, so: any value matches.
    return any(_value_matches(base, value, expected) for value in actual)


def conditions_hold(block: Mapping[str, Any], context: Context) -> bool:
    """A statement's whole Condition element: AND across operators and keys."""
    for operator, tests in block.items():
        if not isinstance(tests, Mapping):
            raise UnsupportedPolicyError(f"condition {operator!r}: expected an object of keys")
        for key, expected in tests.items():
            if not operator_holds(operator, key, expected, context):
                return False
    return True
