"""The CLI's exit codes, its typed errors, and the one place that maps any error to a code.

Commands raise; only :func:`report` turns an exception into one line on stderr and an exit code,
so every failure of every command is reported alike (README "The audit CLI": exit codes).
"""

from __future__ import annotations

import sys
from typing import Final
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

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
    "UsageError",
    "error_code",
    "report",
]

EXIT_OK: Final = 0
"""Done; ``status``: HEALTHY; ``verify``: everything checks out."""
EXIT_ERROR: Final = 1
"""An operational error (credentials, stack not found, endpoint unreachable, an AWS error), or
``verify`` findings."""
EXIT_USAGE: Final = 2
"""Bad command-line input, or input the publisher rejects."""
EXIT_UNHEALTHY: Final = 3
"""``status``: UNHEALTHY."""
EXIT_REFUSED: Final = 4
"""``dlq redrive``: the dead-letter queue holds messages the recorder cannot record (give
``--force`` to move them anyway)."""
EXIT_INTERRUPTED: Final = 130
"""Ctrl-C, as shells report SIGINT."""


class CliError(Exception):
    """A failure to report in one line; its class says the exit code."""

    exit_code: int = EXIT_ERROR


class OperatorError(CliError):
    """An operational failure (a missing resource, a refused read): exit code 1, unless given."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(CliError):
    """Bad command-line input: exit code 2."""

    exit_code = EXIT_USAGE


class RefusedError(CliError):
    """A command declined to act on what it found, and says how to insist: exit code 4."""

    exit_code = EXIT_REFUSED


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError (``AccessDeniedException``, ``ValidationError``)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def report(error: BaseException) -> int:
    """Print ``error`` as one line on stderr; its exit code. Re-raises what is not a failure to
    report (a programming error keeps its traceback)."""
    message, code = _describe(error)
    print(f"audit: error: {message}", file=sys.stderr)
    return code


def _describe(error: BaseException) -> tuple[str, int]:
    match error:
        case CliError():
            return str(error), error.exit_code
        case KeyboardInterrupt():
            return "interrupted", EXIT_INTERRUPTED
        case NoCredentialsError() | PartialCredentialsError():
            return (
                "no AWS credentials found: configure them (aws configure / aws sso login), pass "
                "--profile, or use --local / --endpoint-url for the emulator",
                EXIT_ERROR,
            )
        case ProfileNotFound():
            return (
                f"{error}: check --profile / AWS_PROFILE against aws configure list-profiles",
                EXIT_ERROR,
            )
        case NoRegionError():
            return "no AWS region: pass --region or set AWS_REGION", EXIT_ERROR
        case EndpointConnectionError() | ConnectTimeoutError() | ConnectionClosedError():
            endpoint = str(getattr(error, "kwargs", {}).get("endpoint_url", "the endpoint"))
            hint = (
                " (is `python -m audit_stack.local up` running?)" if _is_loopback(endpoint) else ""
            )
            return f"cannot reach {endpoint}{hint}", EXIT_ERROR
        case ReadTimeoutError():
            return f"no answer in time: {error}", EXIT_ERROR
        case ClientError():
            operation = getattr(error, "operation_name", "request")
            message = error.response.get("Error", {}).get("Message", str(error))
            return f"{operation} failed: {error_code(error)}: {message}", EXIT_ERROR
        case BotoCoreError():
            return str(error), EXIT_ERROR
    raise error


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in {"localhost", "::1"} or host.startswith("127.")
