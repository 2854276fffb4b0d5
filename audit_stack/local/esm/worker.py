"""The thread of one SQS event-source mapping: receives batches through its poller and runs each
in a pool bounded by MaximumConcurrency, deleting what the function processed, as Lambda does.

A throttled invocation (the function's reserved concurrency in use) is retried with back-off until
the batch's visibility timeout ends, as Lambda's event-source mappings do; a batch that fails any
other way is left in the queue and comes back after its visibility timeout.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from audit_stack.local.control.activity import Activity
from audit_stack.local.control.moto_hooks import QueueSnapshot
from audit_stack.local.deploy.model import EventSourceSpec
from audit_stack.local.esm.events import sqs_event, successful_messages
from audit_stack.local.esm.poller import RECEIVE_LIMIT, SqsPoller
from audit_stack.local.runtime.pool import TooManyRequestsError
from audit_stack.local.runtime.registry import InvocationResult

# Without ScalingConfig, Lambda starts an SQS event source with five concurrent batches (and scales
# up to 1,250); five keeps a laptop responsive.
DEFAULT_MAX_CONCURRENCY = 5
# With nothing to receive, look again at least this often (a safety net: every send, publish and
# clock move wakes the poller at once).
_IDLE_RECHECK_SECONDS = 5.0
# A receive that found visible messages but got none (e.g. a FIFO group in flight) retries soon.
_BLOCKED_RECHECK_SECONDS = 0.05
# After a failed receive (e.g. AccessDenied), the next poll waits this long.
_RECEIVE_FAILURE_BACKOFF_SECONDS = 1.0
# Back-off of a throttled invocation: first wait, and the longest.
THROTTLE_FIRST_BACKOFF_SECONDS = 0.05
THROTTLE_MAX_BACKOFF_SECONDS = 1.0


class EventSourceWorker:
    """One event-source mapping's polling thread and its pool of batch invocations.

    :param invoke: runs the function with a payload; raises TooManyRequestsError when throttled.
    :param now_ms: SQS's (virtual) clock, which bounds a throttled batch's retries.
    """

    def __init__(
        self,
        spec: EventSourceSpec,
        *,
        sqs: Any,
        invoke: Callable[[str, bytes], InvocationResult],
        activity: Activity,
        region: str,
        snapshot: Callable[[], QueueSnapshot],
        now_ms: Callable[[], float],
        on_event: Callable[[str], None],
    ) -> None:
        self.spec = spec
        self._sqs = sqs
        self._invoke = invoke
        self._activity = activity
        self._condition = activity.condition
        self._region = region
        self._snapshot = snapshot
        self._now_ms = now_ms
        self._on_event = on_event
        self._poller = SqsPoller(
            spec, sqs=sqs, activity=activity, interrupted=lambda: self._paused or self._stopping
        )
        self.max_concurrency = spec.max_concurrency or DEFAULT_MAX_CONCURRENCY
        self._executor = ThreadPoolExecutor(
            max_workers=self.max_concurrency, thread_name_prefix=f"esm-{spec.logical_id[:20]}"
        )
        self._thread = threading.Thread(
            target=self._run, name=f"esm-{spec.logical_id[:20]}", daemon=True
        )
        self._paused = not spec.enabled
        self._stopping = False
        self._receiving = False
        self._active_batches = 0
        self._held: dict[str, int] = {}

    # -- state read by the idle scheduler (under activity.condition) ---------------------------

    @property
    def queue_name(self) -> str:
        return self.spec.queue_name

    @property
    def busy(self) -> bool:
        """A receive or an invocation is under way."""
        return self._receiving or self._active_batches > 0

    @property
    def active_batches(self) -> int:
        return self._active_batches

    @property
    def held_message_ids(self) -> set[str]:
        return set(self._held)

    @property
    def paused(self) -> bool:
        return self._paused

    # -- control -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def pause(self) -> None:
        """Stop receiving (like disabling the mapping): a batching window ends at once and its
        batch is invoked; batches under way finish."""
        with self._condition:
            self._paused = True
            self._condition.notify_all()
            self._condition.wait_for(lambda: not self._receiving)

    def resume(self) -> None:
        with self._condition:
            self._paused = not self.spec.enabled
        self._activity.changed()

    def request_stop(self) -> None:
        """Receive nothing more and end back-off waits; batches under way end with their
        invocations (whose workers the emulator kills)."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()

    def join(self) -> None:
        if self._thread.is_alive():
            self._thread.join()
        self._executor.shutdown(wait=True)

    def stop(self) -> None:
        self.request_stop()
        self.join()

    # -- the polling loop ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(
                    lambda: (
                        self._stopping
                        or (not self._paused and self._active_batches < self.max_concurrency)
                    )
                )
                if self._stopping:
                    return
                self._receiving = True
                seen = self._activity.generation
            batch: list[dict[str, Any]] = []
            # The batch's visibility timeout runs from its first receive.
            received_at_ms = self._now_ms()
            failed = False
            try:
                batch = self._poller.receive_batch(seen)
            except Exception as error:
                failed = True
                if not self._stopping:
                    self._on_event(f"receive from {self.spec.queue_name} failed: {error}")
            with self._condition:
                self._receiving = False
                if batch:
                    self._active_batches += 1
                    for message in batch:
                        self._held[message["MessageId"]] = (
                            self._held.get(message["MessageId"], 0) + 1
                        )
                self._condition.notify_all()
            if batch:
                self._executor.submit(self._process, batch, received_at_ms)
            elif failed:
                # A failing poll (the role is denied ReceiveMessage) is retried after a pause,
                # as Lambda backs off, instead of at once.
                with self._condition:
                    self._condition.wait_for(
                        lambda: self._stopping or self._paused, _RECEIVE_FAILURE_BACKOFF_SECONDS
                    )
            else:
                self._wait_for_messages(seen)

    def _wait_for_messages(self, seen: int) -> None:
        snapshot = self._snapshot()
        timeout = _IDLE_RECHECK_SECONDS
        if snapshot.visible:
            timeout = _BLOCKED_RECHECK_SECONDS
        next_change = snapshot.next_change_ms()
        if next_change is not None:
            # A message becomes visible (or its delay ends) by itself in real time.
            timeout = min(timeout, max(next_change - self._now_ms(), 0.0) / 1000 + 0.001)
        with self._condition:
            self._condition.wait_for(functools.partial(self._woken, seen), timeout)

    def _woken(self, seen_generation: int) -> bool:
        """Stopping, or something changed since the receive that found nothing."""
        return self._stopping or self._activity.generation != seen_generation

    def _invoke_until_visible_again(
        self, payload: bytes, received_at_ms: float
    ) -> InvocationResult | None:
        """The invocation's result; None if it stayed throttled until the batch's visibility
        timeout ended (the messages are then receivable again, as on AWS)."""
        deadline_ms = received_at_ms + self.spec.visibility_timeout_seconds * 1000
        backoff = THROTTLE_FIRST_BACKOFF_SECONDS
        while True:
            try:
                return self._invoke(self.spec.function_name, payload)
            except TooManyRequestsError:
                remaining = (deadline_ms - self._now_ms()) / 1000
                if remaining <= 0 or self._stopping:
                    return None
                with self._condition:
                    self._condition.wait_for(lambda: self._stopping, min(backoff, remaining))
                backoff = min(backoff * 2, THROTTLE_MAX_BACKOFF_SECONDS)

    def _process(self, messages: list[dict[str, Any]], received_at_ms: float) -> None:
        try:
            payload = sqs_event(messages, self.spec.queue_arn, self._region)
            result = self._invoke_until_visible_again(payload, received_at_ms)
            if result is None:
                self._on_event(
                    f"{self.spec.queue_name}: batch of {len(messages)} throttled until its "
                    "visibility timeout ended; left for retry"
                )
                return
            done = successful_messages(
                messages, result, report_batch_item_failures=self.spec.report_batch_item_failures
            )
            self._delete(done)
            self._on_event(
                f"{self.spec.queue_name}: batch of {len(messages)} -> "
                f"{'function error' if result.function_error else 'ok'}, "
                f"{len(done)} deleted, {len(messages) - len(done)} left for retry"
            )
        except Exception as error:
            # The invocation failed (an injected fault), or the emulator is shutting down: as on
            # Lambda, whatever was not deleted comes back after its visibility timeout.
            if not self._stopping:
                self._on_event(f"batch from {self.spec.queue_name} failed: {error!r}")
        finally:
            with self._condition:
                self._active_batches -= 1
                for message in messages:
                    count = self._held.pop(message["MessageId"], 0) - 1
                    if count > 0:
                        self._held[message["MessageId"]] = count
                self._condition.notify_all()

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), RECEIVE_LIMIT):
            chunk = messages[start : start + RECEIVE_LIMIT]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.spec.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                self._on_event(f"delete from {self.spec.queue_name} failed: {failure}")
