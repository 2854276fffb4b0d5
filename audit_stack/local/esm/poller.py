"""What an SQS event source fetches: one batch per call, honouring BatchSize, the batching window
and Lambda's 6 MB payload limit; the window ends at once when the mapping is paused or stops."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from audit_stack.local.control.activity import Activity
from audit_stack.local.deploy.model import EventSourceSpec
from audit_stack.local.runtime.functions import SYNC_PAYLOAD_LIMIT_BYTES

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
            return messages
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
        return messages

    def _woken(self, seen_generation: int) -> bool:
        """Interrupted, or something changed since the receive that found nothing."""
        return self._interrupted() or self._activity.generation != seen_generation
