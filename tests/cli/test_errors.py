"""Operational errors without an emulator: one line on stderr, exit code 1, no network at all."""

from __future__ import annotations

import socket
from typing import Any, cast

import pytest

from audit_stack.cli import OperatorError, Target
from audit_stack.cli.events import events_of_type
from tests.cli.conftest import Audit


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def assert_one_line_error(stderr: str, starts_with: str) -> None:
    assert stderr.startswith(f"audit: error: {starts_with}"), stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr


def test_no_credentials_against_aws_fails_before_touching_the_network(
    audit_anywhere: Audit, connections: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    run = audit_anywhere("status")

    assert run.exit_code == 1
    assert_one_line_error(run.stderr, "no AWS credentials found")
    assert "--local" in run.stderr
    assert connections == []


def test_an_unknown_profile_is_named(audit_anywhere: Audit, connections: list[Any]) -> None:
    run = audit_anywhere("--profile", "no-such-profile", "--region", "eu-west-1", "trail", "a@b.co")

    assert run.exit_code == 1
    assert_one_line_error(run.stderr, "The config profile (no-such-profile) could not be found")
    assert connections == []


def test_no_region_is_an_operational_error(audit_anywhere: Audit, connections: list[Any]) -> None:
    run = audit_anywhere("dlq", "show")

    assert run.exit_code == 1
    assert_one_line_error(run.stderr, "no AWS region: pass --region")
    assert connections == []


def test_unreachable_endpoint_is_an_operational_error(audit_anywhere: Audit) -> None:
    url = f"http://127.0.0.1:{free_loopback_port()}"

    run = audit_anywhere("--endpoint-url", url, "status")

    assert run.exit_code == 1
    assert_one_line_error(run.stderr, f"cannot reach {url}/")
    assert "python -m audit_stack.local up" in run.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["dlq"], "the following arguments are required: COMMAND"),
        (["purge"], "argument COMMAND: invalid choice: 'purge'"),
        (
            ["--local", "--endpoint-url", "http://127.0.0.1:1", "status"],
            "--local and --endpoint-url",
        ),
        (["--endpoint-url", "127.0.0.1:4599", "status"], "--endpoint-url: '127.0.0.1:4599' is not"),
        (["dlq", "redrive", "--max", "none"], "argument --max: 'none' is not a whole number"),
        (["trail", " "], "SUBJECT must not be empty"),
        (["publish", "InvoiceVoided", "--subject", " "], "--subject must not be empty"),
        (
            ["events", "--type", "T", "--since", "2024-02-01", "--until", "2024-01-31"],
            "--since is after --until",
        ),
    ],
)
def test_usage_errors_exit_with_2(
    audit_anywhere: Audit, connections: list[Any], argv: list[str], message: str
) -> None:
    run = audit_anywhere(*argv)

    assert run.exit_code == 2
    assert_one_line_error(run.stderr, message)
    assert connections == []


def test_help_exits_with_0_and_documents_the_exit_codes(audit_anywhere: Audit) -> None:
    run = audit_anywhere("--help")

    assert run.exit_code == 0
    assert "3 UNHEALTHY" in " ".join(run.stdout.split())


def test_events_on_a_stack_without_the_by_type_index_says_so() -> None:
    # The recorder's EVENT_TYPE_INDEX_SHARDS is 0: event_type_index=False.
    target = Target(
        "AuditPipelineStack",
        "eu-west-1",
        None,
        cast(Any, None),
        resources={"table": "t"},
        event_type_index_shards=0,
    )

    with pytest.raises(OperatorError, match="has no by-type index"):
        events_of_type(target, "AccountDeleted", limit=10)
