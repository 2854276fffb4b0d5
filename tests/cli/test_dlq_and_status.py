"""`audit dlq show`, `dlq redrive` and `status` against the emulator: the incident walkthrough."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from audit_stack.cli import EXIT_REFUSED
from audit_stack.local import LocalAuditPipeline
from tests.cli.conftest import Audit
from tests.cli.helpers import (
    bodies_delivered,
    depth,
    empty_dead_letter_queue,
    event_ids,
    send,
)

NOT_JSON = "this is not an SNS notification"


@pytest.fixture(autouse=True)
def clean_dead_letter_queue(pipeline: LocalAuditPipeline) -> Iterator[None]:
    empty_dead_letter_queue(pipeline)
    yield


def max_receive_count(pipeline: LocalAuditPipeline) -> int:
    attributes = pipeline.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.outputs["QueueUrl"], AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    return int(json.loads(attributes["RedrivePolicy"])["maxReceiveCount"])


def fail_recording(pipeline: LocalAuditPipeline, audit: Audit, *emails: str) -> list[str]:
    """Publish events while the table refuses the recorder's writes: they end in the DLQ."""
    with pipeline.inject_fault(
        "dynamodb:BatchExecuteStatement", error_code="AccessDeniedException"
    ):
        published = [
            audit("--json", "delete-account", email).json()["event_id"] for email in emails
        ]
        # Fast-forwards SQS's clock through every visibility timeout: the DLQ in about a second.
        pipeline.run_until_idle(timeout=60)
    assert depth(pipeline, "DeadLetterQueueUrl") == (len(emails), 0)
    return published


def test_poison_message_shows_in_dlq_show_with_why_and_nothing_is_consumed(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    send(pipeline, "QueueUrl", NOT_JSON)
    pipeline.run_until_idle(timeout=60)
    assert depth(pipeline, "DeadLetterQueueUrl") == (1, 0)

    shown = audit("dlq", "show", "--show-bodies", "--json")
    table = audit("dlq", "show")

    assert shown.exit_code == 0, shown.stderr
    (message,) = shown.json()["messages"]
    assert message["body"] == NOT_JSON
    assert message["problem"] == "body: must be valid JSON"
    assert message["poison"] is True
    # The recorder's receives, then this look.
    assert message["receive_count"] >= max_receive_count(pipeline) + 1
    assert message["sent_at"].endswith("Z")
    assert table.exit_code == 0
    assert message["message_id"] in table.stdout and "body: must be valid JSON" in table.stdout
    assert "Nothing was consumed" in table.stdout
    # Still there, and receivable at once: dlq show left it visible.
    assert depth(pipeline, "DeadLetterQueueUrl") == (1, 0)
    received = pipeline.client("sqs").receive_message(
        QueueUrl=pipeline.outputs["DeadLetterQueueUrl"], VisibilityTimeout=0
    )["Messages"]
    assert [m["MessageId"] for m in received] == [message["message_id"]]


def test_dlq_show_lists_more_messages_than_one_receive_returns(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    bodies = [f"malformed {index}" for index in range(23)]
    send(pipeline, "DeadLetterQueueUrl", *bodies)

    shown = audit("dlq", "show", "--show-bodies", "--json").json()
    limited = audit("dlq", "show", "--limit", "5")

    assert sorted(message["body"] for message in shown["messages"]) == sorted(bodies)
    assert shown["approximate_visible"] == 23
    assert "18 more not shown (--limit 5)" in limited.stdout
    assert depth(pipeline, "DeadLetterQueueUrl") == (23, 0)


def test_dlq_show_tells_a_valid_event_from_a_malformed_one(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    (event_id,) = fail_recording(pipeline, audit, "valid.but.failed@mail.com")

    (message,) = audit("dlq", "show", "--json").json()["messages"]

    assert message["event"] == f"AccountDeleted {event_id}"
    assert message["poison"] is False
    assert message["problem"].startswith("recordable: the recorder failed for another reason")


def test_dlq_show_refuses_a_dead_letter_queue_that_has_its_own_redrive_policy(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    sqs = pipeline.client("sqs")
    dead_letter_url = pipeline.outputs["DeadLetterQueueUrl"]
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=pipeline.outputs["QueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    send(pipeline, "DeadLetterQueueUrl", NOT_JSON)
    policy = json.dumps({"deadLetterTargetArn": queue_arn, "maxReceiveCount": 1})
    sqs.set_queue_attributes(QueueUrl=dead_letter_url, Attributes={"RedrivePolicy": policy})
    try:
        run = audit("dlq", "show")
    finally:
        sqs.set_queue_attributes(QueueUrl=dead_letter_url, Attributes={"RedrivePolicy": ""})

    assert run.exit_code == 1
    assert "has a RedrivePolicy of its own" in run.stderr
    assert depth(pipeline, "DeadLetterQueueUrl") == (1, 0)


def test_status_is_unhealthy_with_a_dlq_message_and_healthy_after_the_fix_and_redrive(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    (event_id,) = fail_recording(pipeline, audit, "incident@mail.com")

    unhealthy = audit("status")
    unhealthy_json = audit("status", "--json")
    assert unhealthy.exit_code == unhealthy_json.exit_code == 3
    assert "\nUNHEALTHY\n" in unhealthy.stdout
    assert "1 message(s) in the dead-letter queue" in unhealthy.stdout
    report = unhealthy_json.json()
    assert report["status"] == "UNHEALTHY"
    assert report["queues"]["dead_letter_queue"]["visible"] == 1
    assert audit("trail", "incident@mail.com", "--json").json()["events"] == []

    # The fault is lifted (the fix); the event goes back to the queue and is recorded.
    redrive = audit("dlq", "redrive")
    pipeline.run_until_idle()

    assert redrive.exit_code == 0, redrive.stderr
    assert redrive.stdout.startswith("Moved 1 message(s) from ")
    assert event_ids(audit("trail", "incident@mail.com", "--json").json()) == [event_id]
    healthy = audit("status")
    assert healthy.exit_code == 0
    assert healthy.stdout.rstrip().endswith("HEALTHY")
    assert "UNHEALTHY" not in healthy.stdout


def test_dlq_redrive_moves_every_message_exactly_once(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    emails = [f"redrive.{index}@mail.com" for index in range(4)]
    published = fail_recording(pipeline, audit, *emails)
    dead_letters = audit("dlq", "show", "--show-bodies", "--json").json()["messages"]
    delivered_before = len(pipeline.invocations("recorder"))

    redrive = audit("dlq", "redrive", "--json")
    pipeline.run_until_idle()

    assert redrive.exit_code == 0, redrive.stderr
    result = redrive.json()
    assert (result["moved"], result["to_move"], result["status"]) == (4, 4, "COMPLETED")
    assert result["method"] == "StartMessageMoveTask"
    redelivered = Counter(bodies_delivered(pipeline, since=delivered_before))
    assert redelivered == Counter(message["body"] for message in dead_letters)
    assert set(redelivered.values()) == {1}
    for email, event_id in zip(emails, published, strict=True):
        assert event_ids(audit("trail", email, "--json").json()) == [event_id]
    assert depth(pipeline, "DeadLetterQueueUrl") == (0, 0)


def test_dlq_redrive_max_moves_at_most_that_many_and_the_rest_later(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    emails = [f"partial.{index}@mail.com" for index in range(3)]
    fail_recording(pipeline, audit, *emails)
    delivered_before = len(pipeline.invocations("recorder"))

    some = audit("dlq", "redrive", "--max", "2", "--json")
    pipeline.run_until_idle()
    left = depth(pipeline, "DeadLetterQueueUrl")
    rest = audit("dlq", "redrive")
    pipeline.run_until_idle()

    assert some.exit_code == rest.exit_code == 0
    assert some.json()["moved"] == 2 and some.json()["method"].endswith("--max 2")
    assert left == (1, 0)
    assert rest.stdout.startswith("Moved 1 message(s)")
    redelivered = Counter(bodies_delivered(pipeline, since=delivered_before))
    assert len(redelivered) == 3 and set(redelivered.values()) == {1}
    recorded: list[Any] = [audit("trail", email, "--json").json()["events"] for email in emails]
    assert [len(events) for events in recorded] == [1, 1, 1]


def test_dlq_redrive_of_an_empty_queue_moves_nothing(audit: Audit) -> None:
    run = audit("dlq", "redrive")

    assert run.exit_code == 0
    assert run.stdout == "The dead-letter queue is empty: nothing to redrive.\n"
    assert audit("dlq", "redrive", "--json").json()["moved"] == 0


def test_status_reads_the_stacks_alarms_and_says_they_are_not_evaluated_locally(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    template_alarms = {
        logical_id
        for logical_id, resource in pipeline.template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }

    run = audit("status", "--json")
    table = audit("status")

    assert run.exit_code == 0, run.stderr
    report = run.json()
    assert {alarm["logical_id"] for alarm in report["alarms"]} == template_alarms
    assert {alarm["state"] for alarm in report["alarms"]} == {"INSUFFICIENT_DATA"}
    assert all(alarm["name"].startswith("AuditPipelineStack-") for alarm in report["alarms"])
    assert "never evaluates them" in report["note"]
    assert report["queues"]["queue"]["oldest_message_age_seconds"] is None
    assert "ApproximateAgeOfOldestMessage >= 900" in table.stdout
    assert "no data" in table.stdout


def test_dlq_redrive_refuses_unrecordable_messages_without_force_and_moves_them_with_it(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    (event_id,) = fail_recording(pipeline, audit, "mixed.batch@mail.com")
    send(pipeline, "DeadLetterQueueUrl", NOT_JSON)

    refused = audit("dlq", "redrive")
    refused_json = audit("dlq", "redrive", "--json")

    assert refused.exit_code == refused_json.exit_code == EXIT_REFUSED == 4
    assert refused.stdout == refused_json.stdout == ""
    warning, *reasons, error = refused.stderr.splitlines()
    assert warning.startswith("warning: 1 message(s) in the dead-letter queue are unrecordable")
    assert reasons == ["  1 x body: must be valid JSON"]
    assert error.startswith("audit: error: not redriving: 1 message(s) would fail again")
    assert "--force" in error
    # Nothing moved, nothing hidden: both still wait in the dead-letter queue.
    assert depth(pipeline, "DeadLetterQueueUrl") == (2, 0)

    delivered_before = len(pipeline.invocations("recorder"))
    forced = audit("dlq", "redrive", "--force", "--json")
    pipeline.run_until_idle(timeout=60)

    assert forced.exit_code == 0, forced.stderr
    assert forced.json()["moved"] == 2 and forced.json()["unrecordable"] == 1
    assert "(moving them anyway: --force)" in forced.stderr
    assert NOT_JSON in bodies_delivered(pipeline, since=delivered_before)
    assert event_ids(audit("trail", "mixed.batch@mail.com", "--json").json()) == [event_id]
    # The poison message is back where the recorder sends what it cannot record.
    assert depth(pipeline, "DeadLetterQueueUrl") == (1, 0)


def test_dlq_show_says_why_a_notification_sns_did_not_sign_is_refused(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    event = {
        "schema_version": 1,
        "event_id": "0b7c5d6e-1f2a-4b3c-9d4e-5f6a7b8c9d0e",
        "event_type": "AccountDeleted",
        "occurred_at": "2026-11-29T04:47:01.123456Z",
        "subject": "unsigned@mail.com",
        "source": "deleteAccount",
        "details": {},
    }
    genuine = json.loads(pipeline.signed_notification(json.dumps(event)))
    unsigned = {
        name: genuine[name] for name in ("Type", "MessageId", "TopicArn", "Timestamp", "Message")
    }
    tampered = {**genuine, "Message": json.dumps({**event, "source": "forged"})}
    send(pipeline, "DeadLetterQueueUrl", json.dumps(unsigned), json.dumps(tampered))
    send(pipeline, "DeadLetterQueueUrl", json.dumps(genuine))

    shown = audit("dlq", "show", "--json", "--show-bodies").json()["messages"]

    problems = Counter(message["problem"].split(":")[0] for message in shown)
    assert problems == Counter({"SignatureVersion": 1, "Signature": 1, "recordable": 1})
    assert {message["poison"] for message in shown if message["body"] != json.dumps(genuine)} == {
        True
    }
