"""The bulk path: the application publishes its deletions itself with ``publish_many``.

``AuditPublisher.publish_many`` sends SNS PublishBatch requests of 10 events, so the publisher
function (its request and duration) and nine in ten SNS requests disappear. Measured on the
project's stack with the event source paused: the publishing side's requests are counted at
the endpoint, and every event must reach the queue. Recording the backlog would be the same work
per event as in the per-call run (the same messages in the same queue), so the recording side's
cost is taken from that run rather than measured again.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from audit_stack import AuditPublisher, discovery
from audit_stack.local import LocalAuditPipeline
from audit_stack.local.moto_state import queue_snapshot
from bench.configurations import Configuration

EVENTS = 10_000
# Events per publish_many call: many PublishBatch requests each.
CHUNK = 500
EMAIL_DOMAIN = "bulk.example"


@dataclass(frozen=True)
class BulkResult:
    """What publishing EVENTS deletions with publish_many asked of AWS."""

    events: int
    published: int
    queued: int
    sns_requests: int
    sns_billed_requests: int
    other_requests: dict[str, int]
    seconds: float

    @property
    def sns_requests_per_event(self) -> float:
        return self.sns_billed_requests / self.events


def run_bulk(configuration: Configuration, events: int = EVENTS, publishers: int = 4) -> BulkResult:
    """Deploy afresh, pause the event source, publish ``events`` deletions in bulk from
    ``publishers`` threads, each calling publish_many on its share."""
    with LocalAuditPipeline(configuration.assembly_dir, configuration.stack_name) as pipeline:
        publisher = AuditPublisher(
            pipeline.topic_arn,
            pseudonym_secret_arn=pipeline.resource_name(discovery.PSEUDONYM_SECRET),
            sns_client=pipeline.client("sns"),
            secrets_client=pipeline.client("secretsmanager"),
        )
        with pipeline.event_sources_paused():
            pipeline.instrumentation.reset_counts()
            started = time.monotonic()
            # A bulk job publishes its chunks in parallel, as the load's publishers do.
            chunks = [range(first, min(first + CHUNK, events)) for first in range(0, events, CHUNK)]
            with ThreadPoolExecutor(max_workers=publishers) as pool:
                published = [
                    event
                    for chunk in pool.map(
                        lambda chunk: publisher.publish_many(
                            {"email": f"bulk{index}@{EMAIL_DOMAIN}"} for index in chunk
                        ),
                        chunks,
                    )
                    for event in chunk
                ]
            seconds = time.monotonic() - started
            counts = pipeline.instrumentation.counts()
            queue_name = pipeline.queue_url.rsplit("/", 1)[-1]
            queued = queue_snapshot(pipeline.account_id, pipeline.region, queue_name).total
            # Nothing is recorded: the pipeline is torn down with the backlog in its queue.
            pipeline.client("sqs").purge_queue(QueueUrl=pipeline.queue_url)
        sns = counts.get("sns:PublishBatch")
        return BulkResult(
            events=events,
            published=len(published),
            queued=queued,
            sns_requests=sns.requests if sns else 0,
            sns_billed_requests=sns.billed_requests if sns else 0,
            other_requests={
                operation: count.requests
                for operation, count in sorted(counts.items())
                if operation != "sns:PublishBatch"
            },
            seconds=seconds,
        )
