"""The bulk path: the application publishes its deletions itself with ``publish_many``.

``AuditPublisher.publish_many`` sends SNS PublishBatch requests of 10 events, so the publisher
function (its request and duration) and nine in ten SNS requests disappear. Measured on the
project's stack with the event source paused: the publishing side's requests are counted at
the endpoint, and every event must reach the queue. Recording the backlog would be the same work
per event as in the per-call run (the same messages in the same queue), so the recording side's
cost is taken from that run rather than measured again, and the queue is counted and purged
after each wave.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from audit_stack import AuditPublisher, discovery
from audit_stack.local import LocalAuditPipeline
from audit_stack.local.control.moto_hooks import queue_snapshot
from bench.configurations import Configuration

EVENTS = 10_000
# Events published between two purges of the queue.
WAVE = 1_000
_STRICT_PURGE = "MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"
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


@contextmanager
def _purge_any_time() -> Iterator[None]:
    """Lift moto's one-purge-per-minute rule (read at each purge) for the bench's bookkeeping."""
    previous = os.environ.get(_STRICT_PURGE)
    os.environ[_STRICT_PURGE] = "false"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[_STRICT_PURGE]
        else:
            os.environ[_STRICT_PURGE] = previous


def run_bulk(configuration: Configuration, events: int = EVENTS, publishers: int = 4) -> BulkResult:
    """Deploy afresh, pause the event source, publish ``events`` deletions in bulk from
    ``publishers`` threads, each calling publish_many on its share."""
    with LocalAuditPipeline(configuration.assembly_dir, configuration.stack_name) as pipeline:
        # The bulk job stands for a producer given grant_publish and grant_lookup: the
        # emulator's own credentials stand in for its role (the administrator is neither), and
        # purge the queue between waves (which the queue policy leaves to the recorder alone).
        publisher = AuditPublisher(
            pipeline.topic_arn,
            pseudonym_secret_arn=pipeline.resource_name(discovery.PSEUDONYM_SECRET),
            sns_client=pipeline.client("sns", as_emulator=True),
            secrets_client=pipeline.client("secretsmanager", as_emulator=True),
        )
        queue_name = pipeline.queue_url.rsplit("/", 1)[-1]
        sqs = pipeline.client("sqs", as_emulator=True)
        published = 0
        queued = 0
        with pipeline.event_sources_paused(), _purge_any_time():
            pipeline.instrumentation.reset_counts()
            started = time.monotonic()
            # In waves, each published by parallel publish_many calls (as a bulk job would),
            # then counted in the queue and purged: nothing is recorded here, and moto scans a
            # whole queue on each change, so a 10,000-message queue would slow moto itself.
            with ThreadPoolExecutor(max_workers=publishers) as pool:
                for first in range(0, events, WAVE):
                    last = min(first + WAVE, events)
                    step = -(-(last - first) // publishers)
                    shares = [
                        range(start, min(start + step, last)) for start in range(first, last, step)
                    ]
                    for done in pool.map(
                        lambda share: publisher.publish_many(
                            {"email": f"bulk{index}@{EMAIL_DOMAIN}"} for index in share
                        ),
                        shares,
                    ):
                        published += len(done)
                    queued += queue_snapshot(pipeline.account_id, pipeline.region, queue_name).total
                    sqs.purge_queue(QueueUrl=pipeline.queue_url)
            seconds = time.monotonic() - started
            counts = pipeline.instrumentation.counts()
        sns = counts.get("sns:PublishBatch")
        return BulkResult(
            events=events,
            published=published,
            queued=queued,
            sns_requests=sns.requests if sns else 0,
            sns_billed_requests=sns.billed_requests if sns else 0,
            other_requests={
                operation: count.requests
                for operation, count in sorted(counts.items())
                if operation not in ("sns:PublishBatch", "sqs:PurgeQueue")
            },
            seconds=seconds,
        )
