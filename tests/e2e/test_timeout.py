"""A recorder whose table answers too late hands its records back before its own timeout.

The stack is AuditStack with the smallest recorder timeout the construct allows (1 s; the queue's
visibility timeout follows from it), and the slowness is real: the table answers the recorder's
writes late (an injected latency). The recorder's client timeouts come from the time its
invocation has left, so it reports batch item failures instead of being killed mid-batch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audit_stack.local import LocalAuditPipeline
from tests.e2e.helpers import queue_counts, records_of

pytestmark = pytest.mark.e2e


def test_slow_table_makes_the_recorder_hand_records_back_before_its_timeout(
    short_timeout_assembly: Path,
) -> None:
    with LocalAuditPipeline(short_timeout_assembly) as pipeline:
        with pipeline.event_sources_paused():
            first = pipeline.invoke("publisher", {"email": "slow.one@mail.com"})
            second = pipeline.invoke("publisher", {"email": "slow.two@mail.com"})

        with pipeline.inject_fault("dynamodb:BatchExecuteStatement", latency=10):
            pipeline.wait_until(
                lambda: bool(pipeline.invocations("recorder")),
                timeout=20,
                what="the recorder's first invocation",
            )
        pipeline.run_until_idle()

        slow, *retries = pipeline.invocations("recorder")
        assert not slow.timed_out and slow.error is None
        assert len(slow.event["Records"]) == 2
        assert len(slow.response["batchItemFailures"]) == 2
        assert all(not call.timed_out for call in retries)
        for published, subject in ((first, "slow.one@mail.com"), (second, "slow.two@mail.com")):
            (item,) = records_of(pipeline, subject)
            assert item["event_id"] == {"S": published["event_id"]}
        assert queue_counts(pipeline, "QueueUrl") == (0, 0)
        assert queue_counts(pipeline, "DeadLetterQueueUrl") == (0, 0)
