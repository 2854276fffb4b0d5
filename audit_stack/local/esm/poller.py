"""What an SQS event source fetches: one batch per call, honouring BatchSize, the batching window
and Lambda's 6 MB payload limit; the window ends at once when the mapping is paused or stops.

The payload limit holds with and without a window: ten 1 MB messages would make a 10 MB event,
which Lambda never sends. The messages that do not fit are made visible again at once (AWS does
not document what it does with them; they are not lost and keep their receive count)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from audit_stack.local.control.activity import Activity
from audit_stack.local.deploy.model import EventSourceSpec
from audit_stack.local.esm.events import fitting_prefix
from audit_stack.local.runtime.pool import SYNC_PAYLOAD_LIMIT_BYTES

RECEIVE_LIMIT = 10  # SQS's ReceiveMessage maximum


class SqsPoller:
    """Receives batches for one event-source mapping.

    :param interrupted: true when the batch gathered so far must go now (paused or stopping).
    """

    def __init__(
        self,
        spec: EventSourceSpec,
        *,
        sqs: Any,
        activity: Activity,
        interrupted: Callable[[], bool],
    ) -> None:
        self.spec = spec
        self._sqs = sqs
        self._activity = activity
        self._interrupted = interrupted

    def receive(self, count: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.spec.queue_url,
            MaxNumberOfMessages=count,
            # The emulator wakes pollers on every send instead of holding a long poll open.
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def receive_batch(self, seen: int) -> list[dict[str, Any]]:
        """One batch; ``seen`` is the activity generation before the call (wakes the window)."""
        spec = self.spec
        messages = self.receive(min(RECEIVE_LIMIT, spec.batch_size))
        if not messages or spec.batching_window_seconds <= 0:
            return self._within_payload_limit(messages)
        # The batching window: keep gathering until the batch or the payload is full.
        deadline = time.monotonic() + spec.batching_window_seconds
        condition = self._activity.condition
        while len(messages) < spec.batch_size and not self._interrupted():
            if sum(len(message["Body"]) for message in messages) >= SYNC_PAYLOAD_LIMIT_BYTES:
                break
            got = self.receive(min(RECEIVE_LIMIT, spec.batch_size - len(messages)))
            messages += got
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if not got:
                with condition:
                    condition.wait_for(functools.partial(self._woken, seen), remaining)
                    seen = self._activity.generation
        return self._within_payload_limit(messages)

    def _within_payload_limit(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The longest prefix whose event fits in 6 MB; the rest made visible again."""
        region = self.spec.queue_arn.split(":")[3]
        count = fitting_prefix(messages, self.spec.queue_arn, region, SYNC_PAYLOAD_LIMIT_BYTES)
        kept = messages[:count]
        excess = messages[len(kept) :]
        for start in range(0, len(excess), RECEIVE_LIMIT):
            self._sqs.change_message_visibility_batch(
                QueueUrl=self.spec.queue_url,
                Entries=[
                    {
                        "Id": str(index),
                        "ReceiptHandle": message["ReceiptHandle"],
                        "VisibilityTimeout": 0,
                    }
                    for index, message in enumerate(excess[start : start + RECEIVE_LIMIT])
                ],
            )
        return kept

    def _woken(self, seen_generation: int) -> bool:
        """Interrupted, or something changed since the receive that found nothing."""
        return self._interrupted() or self._activity.generation != seen_generation
