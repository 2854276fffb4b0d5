"""Readers and writers of the emulator's queues for the CLI tests (plain boto3, not the CLI)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from audit_stack.local import LocalAuditPipeline
from tests.e2e.helpers import queue_counts


def depth(pipeline: LocalAuditPipeline, output: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue named by a stack output."""
    return queue_counts(pipeline, output)


def send(pipeline: LocalAuditPipeline, output: str, *bodies: str) -> None:
    """Send raw bodies to the queue named by a stack output (as the emulator: the queue policy
    lets only the topic send)."""
    sqs = pipeline.client("sqs", as_emulator=True)
    for body in bodies:
        sqs.send_message(QueueUrl=pipeline.outputs[output], MessageBody=body)


def empty_dead_letter_queue(pipeline: LocalAuditPipeline) -> None:
    """Start a test from an empty DLQ and an idle pipeline (the emulator is shared per module)."""
    pipeline.run_until_idle(timeout=60)
    # Received and deleted: PurgeQueue is allowed only once a minute.
    sqs = pipeline.client("sqs")
    url = pipeline.outputs["DeadLetterQueueUrl"]
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert depth(pipeline, "DeadLetterQueueUrl") == (0, 0)


def publish_event(
    pipeline: LocalAuditPipeline,
    subject: str,
    occurred_at: datetime,
    event_type: str,
    *,
    subject_type: str | None = None,
) -> str:
    """Publish an audit event with a chosen time through the topic, as a producer would; its id.

    A version 1 event naming an address by default; a version 2 one with ``subject_type``.
    """
    event_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "schema_version": 1,
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "subject": subject,
        "source": "cli-test",
        "details": {"email": subject},
    }
    if subject_type is not None:
        event.update(schema_version=2, subject_type=subject_type, idempotent=False, details={})
    pipeline.client("sns").publish(
        TopicArn=pipeline.outputs["TopicArn"],
        Message=json.dumps(event),
        MessageAttributes={"event_type": {"DataType": "String", "StringValue": event_type}},
    )
    return event_id


def bodies_delivered(pipeline: LocalAuditPipeline, since: int = 0) -> list[str]:
    """SQS bodies the recorder received, in order, from its ``since``-th invocation on."""
    return [
        record["body"]
        for invocation in pipeline.invocations("recorder")[since:]
        for record in invocation.event["Records"]
    ]


def event_ids(run_json: dict[str, Any]) -> list[str]:
    """The event ids of a `trail`/`events --json` answer, in its order."""
    return [event["event_id"] for event in run_json["events"]]
