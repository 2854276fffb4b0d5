"""``audit``: the operator CLI of the audit pipeline, for a deployed stack or the local emulator.

One module per command (``trail``, ``events``, ``dlq``, ``status``, ``seal``, ``verify``,
``delete_account``), each with its AWS logic as plain functions apart from the argument wiring
(``main``); one renderer (``render``); one map from errors to exit codes (``errors``). Never
imports aws_cdk.
"""

from __future__ import annotations

from audit_stack.cli.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNHEALTHY,
    EXIT_USAGE,
    CliError,
    OperatorError,
    RefusedError,
    UsageError,
)
from audit_stack.cli.main import build_parser, main
from audit_stack.cli.target import Target, TargetOptions, resolve_target

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNHEALTHY",
    "EXIT_USAGE",
    "CliError",
    "OperatorError",
    "RefusedError",
    "Target",
    "TargetOptions",
    "UsageError",
    "build_parser",
    "main",
    "resolve_target",
]
