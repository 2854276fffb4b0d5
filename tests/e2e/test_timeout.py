"""A recorder that runs into its timeout fails its whole batch, as on Lambda.

The stack is AuditStack with the smallest recorder timeout the construct allows (1 s; the queue's
visibility timeout follows from it), and the slowness is real: the table answers the recorder's
writes late (an injected latency), so the unmodified recorder runs out of time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audit_stack.local import LocalAuditPipeline
from tests.e2e.helpers import queue_counts, records_of

pytestmark = pytest.mark.e2e


def test_recorder_exceeding_its_timeout_fails_the_whole_batch(short_timeout_assembly: Path) -> None:
    with LocalAuditPipeline(short_timeout_assembly) as pipeline:
        recorder_name = pipeline.outputs["RecorderFunctionName"]
        (recorder,) = [spec for spec in pipeline.deployment.functions if spec.name == recorder_name]
        timeout = recorder.timeout_seconds
        with pipeline.event_sources_paused():
            first = pipeline.invoke("publisher", {"email": "slow.one@mail.com"})
            second = pipeline.invoke("publisher", {"email": "slow.two@mail.com"})

        with pipeline.inject_fault("dynamodb:PutItem", latency=timeout + 10):
            pipeline.wait_until(
                lambda: any(call.timed_out for call in pipeline.invocations("recorder")),
                timeout=timeout + 20,
                what="the recorder's timeout",
            )
            # Neither message was deleted, not even the one the recorder never got to.
            assert queue_counts(pipeline, "QueueUrl") == (0, 2)
        pipeline.run_until_idle()

        timed_out, retry = pipeline.invocations("recorder")
        assert timed_out.error is not None
        assert timed_out.error["errorMessage"].endswith(
            f"Task timed out after {timeout:.2f} seconds"
        )
        assert len(timed_out.event["Records"]) == 2
        assert retry.succeeded and retry.response == {"batchItemFailures": []}
        assert [
            record["attributes"]["ApproximateReceiveCount"] for record in retry.event["Records"]
        ] == [
            "2",
            "2",
        ]
        for published, subject in ((first, "slow.one@mail.com"), (second, "slow.two@mail.com")):
            (item,) = records_of(pipeline, subject)
            assert item["event_id"] == {"S": published["event_id"]}
        assert queue_counts(pipeline, "QueueUrl") == (0, 0)
        assert queue_counts(pipeline, "DeadLetterQueueUrl") == (0, 0)
