"""Data model v2 end to end: caller idempotency, version 1 messages in a version 2 pipeline."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from audit_stack.local import LocalAuditPipeline
from tests.e2e.helpers import queue_counts, records_of, subject_of

pytestmark = pytest.mark.e2e


def _v1_event(email: str, occurred_at: datetime) -> dict[str, object]:
    """An event exactly as the version 1 publisher wrote it."""
    return {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "event_type": "AccountDeleted",
        "occurred_at": occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "subject": email.lower(),
        "source": "deleteAccount",
        "details": {"email": email},
    }


def _publish(pipeline: LocalAuditPipeline, event: dict[str, object]) -> None:
    pipeline.client("sns").publish(
        TopicArn=pipeline.outputs["TopicArn"],
        Message=json.dumps(event),
        MessageAttributes={"event_type": {"DataType": "String", "StringValue": "AccountDeleted"}},
    )


def test_retries_with_one_idempotency_key_are_recorded_once(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline
    payload = {"email": "retry.me@mail.com", "idempotency_key": "checkout-5521"}

    first = pipeline.invoke("publisher", payload)
    pipeline.run_until_idle()
    # The caller timed out and retries, later and concurrently with a third attempt.
    with pipeline.event_sources_paused():
        second = pipeline.invoke("publisher", payload)
        third = pipeline.invoke("publisher", {**payload, "email": "Retry.Me@mail.com"})
    pipeline.run_until_idle()
    other = pipeline.invoke("publisher", {**payload, "idempotency_key": "checkout-5522"})
    pipeline.run_until_idle()

    assert first["event_id"] == second["event_id"] == third["event_id"] != other["event_id"]
    assert len({first["occurred_at"], second["occurred_at"], third["occurred_at"]}) == 3
    records = records_of(pipeline, "retry.me@mail.com")
    assert sorted(item["event_id"]["S"] for item in records) == sorted(
        [first["event_id"], other["event_id"]]
    )
    (recorded,) = [item for item in records if item["event_id"]["S"] == first["event_id"]]
    assert recorded["occurred_at"] == {"S": first["occurred_at"]}
    assert all(
        invocation.response == {"batchItemFailures": []}
        for invocation in pipeline.invocations("recorder")
    )


def test_version_1_messages_are_recorded_by_the_version_2_pipeline(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline
    moment = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    queued = _v1_event("Old.Queue@mail.com", moment)

    _publish(pipeline, queued)
    pipeline.run_until_idle()

    (item,) = records_of(pipeline, "old.queue@mail.com")
    assert item["event_id"] == {"S": queued["event_id"]}
    assert item["schema_version"] == {"N": "1"}
    assert item["subject"] == {"S": subject_of(pipeline, "old.queue@mail.com")}
    assert item["details"] == {"M": {}}
    assert "old.queue" not in json.dumps(item).lower()


def test_version_1_message_redriven_from_the_dlq_after_the_upgrade_is_recorded(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline
    event = _v1_event("dead.letter.v1@mail.com", datetime(2026, 10, 30, 23, 0, tzinfo=UTC))
    # A version 1 notification that failed five times before the upgrade waits in the DLQ,
    # signed by the emulator's SNS as it was when delivered.
    notification = pipeline.sns_signer.sign(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": pipeline.outputs["TopicArn"],
            "Timestamp": "2026-10-30T23:00:00.123Z",
            "Message": json.dumps(event),
        }
    )
    pipeline.client("sqs").send_message(
        QueueUrl=pipeline.outputs["DeadLetterQueueUrl"], MessageBody=json.dumps(notification)
    )

    assert pipeline.redrive_dlq() == 1
    pipeline.run_until_idle()

    (item,) = records_of(pipeline, "dead.letter.v1@mail.com")
    assert item["event_id"] == {"S": event["event_id"]}
    assert item["sns_message_id"] == {"S": notification["MessageId"]}
    assert queue_counts(pipeline, "DeadLetterQueueUrl") == (0, 0)
