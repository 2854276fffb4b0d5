"""The checks CreateFunction and CreateEventSourceMapping make, as the deployment applies them."""

from __future__ import annotations

from typing import Any

import pytest

from audit_stack.local.deploy.context import template_bool
from audit_stack.local.deploy.functions import (
    event_source_mapping_errors,
    reserved_environment_keys,
)

VALID: dict[str, Any] = {
    "batch_size": 10,
    "batching_window_seconds": 0.0,
    "max_concurrency": None,
    "queue_visibility_timeout": 30,
    "function_timeout": 30,
}


def test_a_valid_mapping_has_no_errors() -> None:
    assert event_source_mapping_errors(**VALID) == []
    larger = {**VALID, "batch_size": 100, "batching_window_seconds": 1}
    assert event_source_mapping_errors(**larger) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"function_timeout": 31}, "visibility timeout (30 s) is less than the function timeout"),
        ({"batch_size": 11}, "BatchSize 11 over 10 needs MaximumBatchingWindowInSeconds"),
        ({"batch_size": 0}, "BatchSize 0 must be between 1 and 10000"),
        ({"max_concurrency": 1}, "MaximumConcurrency 1 must be between 2 and 1000"),
        ({"batching_window_seconds": 301}, "MaximumBatchingWindowInSeconds 301 must be between"),
    ],
)
def test_each_refused_setting_is_named(change: dict[str, Any], message: str) -> None:
    (error,) = event_source_mapping_errors(**{**VALID, **change})

    assert message in error


def test_every_problem_is_reported_at_once() -> None:
    errors = event_source_mapping_errors(
        batch_size=50,
        batching_window_seconds=0,
        max_concurrency=1,
        queue_visibility_timeout=3,
        function_timeout=10,
    )

    assert len(errors) == 3


def test_reserved_environment_keys_are_found_and_others_pass() -> None:
    variables = {"AWS_REGION": "x", "AWS_LAMBDA_FUNCTION_NAME": "f", "_HANDLER": "h", "TABLE": "t"}

    assert reserved_environment_keys(variables) == [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_REGION",
        "_HANDLER",
    ]
    assert reserved_environment_keys({"POWERTOOLS_SERVICE_NAME": "audit"}) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("True", True), ("false", False), ("", False)],
)
def test_cloudformation_booleans_may_be_strings(value: Any, expected: bool) -> None:
    assert template_bool(value) is expected
