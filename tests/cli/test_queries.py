"""`audit delete-account`, `trail` and `events` against the emulator, and how a target resolves."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit_stack import endpoints, lambda_code
from audit_stack.cli import events
from audit_stack.cli.queries import encode_cursor
from audit_stack.local import LocalAuditPipeline
from tests.cli.conftest import Audit
from tests.cli.helpers import depth, event_ids, publish_event

ROOT = Path(__file__).resolve().parents[2]
# What `audit trail --json` says of a subject with no events (and every key version read).
NO_EVENTS = {"events": [], "more": False, "next_cursor": None, "warnings": []}


def test_delete_account_then_trail_shows_the_event_newest_first(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    first = audit("--json", "delete-account", "Trail.Owner@mail.com")
    second = audit("delete-account", "trail.owner@mail.com")
    pipeline.run_until_idle()

    assert first.exit_code == 0, first.stderr
    published = first.json()
    assert published["event_type"] == "AccountDeleted"
    assert second.exit_code == 0, second.stderr
    assert "event_id" in second.stdout and "audit --endpoint-url" in second.stdout
    second_id = second.stdout.split()[1]

    trail = audit("trail", "TRAIL.OWNER@mail.com", "--json")
    assert trail.exit_code == 0, trail.stderr
    assert event_ids(trail.json()) == [second_id, published["event_id"]]
    assert trail.json()["more"] is False
    newest = trail.json()["events"][0]
    assert len(newest["subject"]) == 64 and newest["subject_type"] == "hmac-sha256"
    assert newest["details"] == {}

    table = audit("trail", "trail.owner@mail.com")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0] == "2 event(s) for the given address, newest first:"
    assert "trail.owner" not in table.stdout.lower()
    assert lines[3].endswith("(no personal details stored)")
    assert lines[2].split() == [
        "OCCURRED",
        "AT",
        "EVENT",
        "TYPE",
        "EVENT",
        "ID",
        "SOURCE",
        "DETAILS",
    ]
    assert second_id in lines[3] and published["event_id"] in lines[4]


def test_delete_account_with_an_invalid_email_is_a_usage_error_and_publishes_nothing(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    invocations = len(pipeline.invocations("recorder"))

    run = audit("delete-account", "not-an-address")
    pipeline.run_until_idle()

    assert run.exit_code == 2
    assert run.stderr == (
        "audit: error: the publisher rejected the request: email: must be a valid email address\n"
    )
    assert run.stdout == ""
    assert len(pipeline.invocations("recorder")) == invocations
    assert depth(pipeline, "QueueUrl") == (0, 0)


def test_trail_of_an_unknown_account_is_empty_not_an_error(audit: Audit) -> None:
    run = audit("trail", "nobody@mail.com")

    assert run.exit_code == 0
    assert run.stdout == "No events for the given address.\n"
    assert audit("trail", "nobody@mail.com", "--json").json() == NO_EVENTS


def test_trail_filters_by_type_and_stops_at_the_limit(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    for _ in range(3):
        assert audit("delete-account", "limited@mail.com").exit_code == 0
    pipeline.run_until_idle()

    everything = event_ids(audit("trail", "limited@mail.com", "--json").json())
    limited = audit("trail", "limited@mail.com", "--limit", "2", "--json").json()
    table = audit("trail", "limited@mail.com", "--limit", "2")
    other_type = audit("trail", "limited@mail.com", "--type", "AccountCreated", "--json").json()
    same_type = audit("trail", "limited@mail.com", "--type", "AccountDeleted", "--json").json()

    assert len(everything) == 3
    assert event_ids(limited) == everything[:2] and limited["more"] is True
    assert "More events match" in table.stdout
    assert other_type == NO_EVENTS
    assert event_ids(same_type) == everything


def test_events_by_type_in_a_time_range(audit: Audit, pipeline: LocalAuditPipeline) -> None:
    # Events from a producer with chosen times, far from the "now" of the other tests' events.
    times = {
        "day_before": datetime(2024, 1, 14, 23, 59, 59, 999999, tzinfo=UTC),
        "midnight": datetime(2024, 1, 15, 0, 0, tzinfo=UTC),
        "noon": datetime(2024, 1, 15, 12, 0, tzinfo=UTC),
        "last_microsecond": datetime(2024, 1, 15, 23, 59, 59, 999999, tzinfo=UTC),
        "day_after": datetime(2024, 1, 16, 0, 0, tzinfo=UTC),
    }
    ids = {
        name: publish_event(pipeline, f"{name}@mail.com", moment, "AccountDeleted")
        for name, moment in times.items()
    }
    pipeline.run_until_idle()

    def between(*options: str) -> list[str]:
        run = audit("events", "--type", "AccountDeleted", *options, "--json")
        assert run.exit_code == 0, run.stderr
        return event_ids(run.json())

    whole_day = between("--since", "2024-01-15", "--until", "2024-01-15")
    # 13:00 at UTC+1 is noon UTC; a naive time is UTC.
    from_noon = between("--since", "2024-01-15T13:00:00+01:00", "--until", "2024-01-16")
    to_noon = between("--since", "2024-01-14T23:59:59.999999", "--until", "2024-01-15T12:00:00Z")
    recent = between("--since", "2025-01-01")

    assert whole_day == [ids["last_microsecond"], ids["noon"], ids["midnight"]]
    assert from_noon == [ids["day_after"], ids["last_microsecond"], ids["noon"]]
    assert to_noon == [ids["noon"], ids["midnight"], ids["day_before"]]
    assert not set(ids.values()) & set(recent)
    table = audit(
        "events", "--type", "AccountDeleted", "--since", "2024-01-15", "--until", "2024-01-15"
    )
    assert table.stdout.splitlines()[0] == (
        "3 event(s) of type AccountDeleted since 2024-01-15 until 2024-01-15, newest first:"
    )
    assert ids["noon"] in table.stdout and ids["day_after"] not in table.stdout
    # Version 1 messages naming an address were recorded under its pseudonym.
    assert "@mail.com" not in table.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["trail", "a@mail.com", "--since", "2024-13-01"],
            "argument --since: '2024-13-01' is not an ISO 8601 date or date-time",
        ),
        (
            ["events", "--type", "AccountDeleted", "--until", "yesterday"],
            "argument --until: 'yesterday' is not an ISO 8601 date or date-time",
        ),
        (
            [
                "events",
                "--type",
                "AccountDeleted",
                "--since",
                "2024-02-01",
                "--until",
                "2024-01-31",
            ],
            "--since is after --until",
        ),
        (["events", "--since", "2024-01-01"], "the following arguments are required: --type"),
        (["trail", "a@mail.com", "--limit", "0"], "argument --limit: '0' must be at least 1"),
    ],
)
def test_bad_input_is_a_one_line_usage_error(audit: Audit, argv: list[str], message: str) -> None:
    run = audit(*argv)

    assert run.exit_code == 2
    assert run.stderr.startswith(f"audit: error: {message}")
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert run.stdout == ""


def test_unknown_stack_is_an_operational_error(audit: Audit) -> None:
    run = audit("--stack", "NoSuchStack", "status")

    assert run.exit_code == 1
    assert run.stderr.startswith("audit: error: stack 'NoSuchStack' not found in us-east-1 at ")
    assert run.stderr.count("\n") == 1


def test_target_options_work_before_and_after_the_command(
    audit_anywhere: Audit, pipeline: LocalAuditPipeline
) -> None:
    before = audit_anywhere(
        "--endpoint-url", pipeline.endpoint_url, "--json", "trail", "x@mail.com"
    )
    after = audit_anywhere("trail", "x@mail.com", "--endpoint-url", pipeline.endpoint_url, "--json")
    nested = audit_anywhere("dlq", "show", "--endpoint-url", pipeline.endpoint_url, "--json")

    assert before.exit_code == after.exit_code == nested.exit_code == 0
    assert before.json() == after.json() == NO_EVENTS
    assert nested.json()["messages"] == []


def test_local_means_the_default_endpoint_of_the_emulator(
    audit_anywhere: Audit, pipeline: LocalAuditPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The module's emulator listens on a free port, not on LOCAL_PORT (a `make up` may run there).
    monkeypatch.setattr(endpoints, "LOCAL_ENDPOINT_URL", pipeline.endpoint_url)

    run = audit_anywhere("--local", "status", "--json")

    assert run.exit_code == 0, run.stderr
    assert run.json()["endpoint_url"] == pipeline.endpoint_url
    assert run.json()["region"] == endpoints.LOCAL_REGION == pipeline.region


def test_installed_console_script_and_python_m_run_the_same_cli(
    pipeline: LocalAuditPipeline, tmp_path: Path
) -> None:
    script = Path(sys.executable).with_name("audit")
    assert script.is_file(), "the console script is missing: pip install -e ."
    empty = tmp_path / "empty"
    empty.write_text("")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and "PROXY" not in key.upper()
    }
    env |= {
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    argv = ["--endpoint-url", pipeline.endpoint_url, "trail", "nobody@mail.com", "--json"]

    for command in ([str(script)], [sys.executable, "-m", "audit_stack"]):
        result = subprocess.run(
            [*command, *argv], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == NO_EVENTS

    help_run = subprocess.run(
        [str(script), "--help"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert help_run.returncode == 0 and "exit codes:" in help_run.stdout
    version_run = subprocess.run(
        [sys.executable, "-m", "audit_stack", "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert version_run.returncode == 0 and version_run.stdout.startswith("audit ")


def test_events_pages_through_every_shard_with_a_cursor(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    start = datetime(2023, 5, 1, tzinfo=UTC)
    published = [
        publish_event(pipeline, f"page{n}@mail.com", start + timedelta(minutes=n), "AccountDeleted")
        for n in range(25)
    ]
    pipeline.run_until_idle()
    window = ["--since", "2023-05-01", "--until", "2023-05-01"]

    pages = []
    cursor: list[str] = []
    while True:
        run = audit(
            "events", "--type", "AccountDeleted", *window, "--limit", "10", *cursor, "--json"
        )
        assert run.exit_code == 0, run.stderr
        pages.append(run.json())
        if run.json()["next_cursor"] is None:
            break
        cursor = ["--cursor", run.json()["next_cursor"]]

    assert [len(page["events"]) for page in pages] == [10, 10, 5]
    assert [page["more"] for page in pages] == [True, True, False]
    assert [event_id for page in pages for event_id in event_ids(page)] == published[::-1]
    shards = {event["event_type_shard"] for page in pages for event in page["events"]}
    assert len(shards) > 1  # the events really are spread over several shards
    table = audit("events", "--type", "AccountDeleted", *window, "--limit", "10")
    assert "--cursor " in table.stdout


def test_a_cursor_of_another_type_or_garbage_is_a_usage_error(audit: Audit) -> None:
    other = encode_cursor(events.scope("AccountCreated"), "2023-05-01T00:00:00.000000Z#x")

    wrong_type = audit("events", "--type", "AccountDeleted", "--cursor", other)
    garbage = audit("events", "--type", "AccountDeleted", "--cursor", "not-a-cursor")

    assert wrong_type.exit_code == garbage.exit_code == 2
    assert "it continues events of type 'AccountCreated'" in wrong_type.stderr
    assert "not a cursor printed by `audit trail` or `audit events`" in garbage.stderr


def test_trail_finds_records_under_every_version_of_the_secret_and_in_clear_when_asked(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    address = "Rotated.Account@mail.com"
    secrets = pipeline.client("secretsmanager")
    secret_arn = pipeline.outputs["PseudonymSecretArn"]
    # Before the upgrade: a version 1 record, the address itself as its subject.
    pre_upgrade = {
        "subject": {"S": "rotated.account@mail.com"},
        "event_key": {
            "S": "2025-01-01T00:00:00.000000Z#" + "0" * 8 + "-0000-4000-8000-" + "0" * 12
        },
        "event_type": {"S": "AccountDeleted"},
        "event_id": {"S": "00000000-0000-4000-8000-000000000000"},
        "occurred_at": {"S": "2025-01-01T00:00:00.000000Z"},
        "schema_version": {"N": "1"},
        "source": {"S": "deleteAccount"},
        "details": {"M": {"email": {"S": "rotated.account@mail.com"}}},
    }
    # Only the recorder may put items (the table's policy): the old record goes in as the emulator.
    pipeline.client("dynamodb", as_emulator=True).put_item(
        TableName=pipeline.outputs["TableName"], Item=pre_upgrade
    )
    before_rotation = audit("--json", "delete-account", address).json()["event_id"]
    pipeline.run_until_idle()
    # The secret is rotated; a producer that already has the new version publishes.
    secrets.put_secret_value(SecretId=secret_arn, SecretString="n" * 64)
    after_rotation = publish_event(
        pipeline,
        lambda_code.pseudonymous_subject("rotated.account@mail.com", b"n" * 64),
        datetime.now(UTC),
        "AccountDeleted",
        subject_type="hmac-sha256",
    )
    pipeline.run_until_idle()

    run = audit("trail", address, "--include-clear", "--json")
    without_clear = audit("trail", address, "--json")

    assert run.exit_code == 0, run.stderr
    assert event_ids(run.json()) == [
        after_rotation,
        before_rotation,
        "00000000-0000-4000-8000-000000000000",
    ]
    # The address is a query key only when asked: pseudonyms alone otherwise.
    assert event_ids(without_clear.json()) == [after_rotation, before_rotation]
    assert run.json()["warnings"] == without_clear.json()["warnings"] == []


def test_delete_account_with_an_idempotency_key_records_retries_once(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    runs = [
        audit("--json", "delete-account", "keyed@mail.com", "--idempotency-key", "req-99")
        for _ in range(3)
    ]
    pipeline.run_until_idle()

    assert {run.json()["event_id"] for run in runs} == {runs[0].json()["event_id"]}
    assert event_ids(audit("trail", "keyed@mail.com", "--json").json()) == [
        runs[0].json()["event_id"]
    ]


def test_trail_without_access_to_the_secret_says_which_grant_is_missing(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    with pipeline.inject_fault("secretsmanager:GetSecretValue", error_code="AccessDeniedException"):
        run = audit("trail", "anyone@mail.com")

    assert run.exit_code == 1
    assert "not allowed to read the pseudonym secret" in run.stderr
    assert "AuditPipeline.grant_lookup" in run.stderr
    assert "anyone" not in run.stderr


def test_trail_pages_with_a_cursor_and_its_table_prints_the_command_that_continues(
    audit: Audit, audit_anywhere: Audit, pipeline: LocalAuditPipeline
) -> None:
    address = "paged.trail@mail.com"
    for _ in range(5):
        assert audit("delete-account", address).exit_code == 0
    pipeline.run_until_idle()
    everything = event_ids(audit("trail", address, "--json").json())

    pages = []
    cursor: list[str] = []
    while True:
        run = audit("trail", address, "--limit", "2", *cursor, "--json")
        assert run.exit_code == 0, run.stderr
        pages.append(run.json())
        if run.json()["next_cursor"] is None:
            break
        cursor = ["--cursor", run.json()["next_cursor"]]

    assert [len(page["events"]) for page in pages] == [2, 2, 1]
    assert [page["more"] for page in pages] == [True, True, False]
    assert [event_id for page in pages for event_id in event_ids(page)] == everything
    # A table's last line is the command for the next page; the address stays out of it.
    first = audit("trail", address, "--limit", "2")
    last_line = first.stdout.splitlines()[-1]
    assert last_line.startswith("More events match: continue with audit --endpoint-url ")
    assert "paged.trail" not in first.stdout
    command = shlex.split(last_line.split("continue with ", 1)[1])
    assert command[0] == "audit" and "EMAIL" in command
    second = audit_anywhere(*(address if word == "EMAIL" else word for word in command[1:]))
    assert second.exit_code == 0, second.stderr
    assert second.stdout.splitlines()[0] == "2 event(s) for the given address, newest first:"
    assert all(event_id in second.stdout for event_id in event_ids(pages[1]))
    assert not any(event_id in second.stdout for event_id in event_ids(pages[0]))
    # A trail's cursor does not continue another query.
    other = audit("events", "--type", "AccountDeleted", "--cursor", pages[0]["next_cursor"])
    assert other.exit_code == 2
    assert "it continues a subject's trail, not events of type 'AccountDeleted'" in other.stderr


def test_output_json_is_the_same_as_json_and_output_table_the_default(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    audit("delete-account", "output.flag@mail.com")
    pipeline.run_until_idle()  # recorded (alone, the recorder's first start may be slower)
    query = ["trail", "output.flag@mail.com"]

    short = audit(*query, "--json")
    long_after = audit(*query, "--output", "json")
    long_before = audit("--output", "json", *query)
    table = audit(*query, "--output", "table")
    default = audit(*query)

    assert short.exit_code == long_after.exit_code == long_before.exit_code == 0
    assert short.stdout == long_after.stdout == long_before.stdout
    assert short.json()["events"]
    assert table.stdout == default.stdout and not table.stdout.startswith("{")
    bad = audit(*query, "--output", "yaml")
    assert bad.exit_code == 2 and "argument --output: invalid choice: 'yaml'" in bad.stderr
