"""Publishing many events and accounting for every one of them in the table and the DLQ."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from audit_stack.local import LocalAuditPipeline

PUBLISHER_THREADS = 4


def publish(pipeline: LocalAuditPipeline, emails: Iterable[str]) -> list[str]:
    """Invoke the publisher once per e-mail from a few threads; the published event ids."""
    with ThreadPoolExecutor(max_workers=PUBLISHER_THREADS) as pool:
        answers = pool.map(lambda email: pipeline.invoke("publisher", {"email": email}), emails)
        return [str(answer["event_id"]) for answer in answers]


def recorded_event_ids(pipeline: LocalAuditPipeline) -> Counter[str]:
    """How many items the table holds for each event id (a full scan)."""
    dynamodb = pipeline.client("dynamodb")
    found: Counter[str] = Counter()
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=pipeline.outputs["TableName"], ProjectionExpression="event_id"
    ):
        found.update(item["event_id"]["S"] for item in page["Items"])
    return found


def dead_letter_bodies(pipeline: LocalAuditPipeline) -> list[str]:
    """Receive and delete everything in the DLQ (no event source consumes it)."""
    sqs = pipeline.client("sqs")
    url = pipeline.outputs["DeadLetterQueueUrl"]
    bodies: list[str] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [message["Body"] for message in batch]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(batch)
            ],
        )
    return bodies


def dead_letter_count(pipeline: LocalAuditPipeline) -> int:
    """Messages in the DLQ, visible or not."""
    attributes: dict[str, Any] = pipeline.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.outputs["DeadLetterQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


@dataclass(frozen=True)
class Ledger:
    """Published events against the table: each must be there exactly once."""

    published: int
    recorded: int
    lost: int
    duplicates: int
    unexpected: int

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.unexpected == 0


def account(published: Iterable[str], recorded: Counter[str]) -> Ledger:
    """Compare what was published with what the table holds."""
    expected = set(published)
    return Ledger(
        published=len(expected),
        recorded=sum(1 for event_id in expected if recorded[event_id] > 0),
        lost=sum(1 for event_id in expected if recorded[event_id] == 0),
        duplicates=sum(count - 1 for count in recorded.values() if count > 1),
        unexpected=sum(1 for event_id in recorded if event_id not in expected),
    )
