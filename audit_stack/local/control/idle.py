"""run_until_idle: waits until the event-source queues are drained and nothing is in flight,
fast-forwarding SQS's virtual clock when all that is left is waiting for it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from audit_stack.local.control.activity import Activity
from audit_stack.local.control.moto_hooks import QueueSnapshot

# Look again at least this often, e.g. for visibility timeouts ending in real time.
_IDLE_RECHECK_SECONDS = 1.0


class EventSource(Protocol):
    """What the scheduler reads of an event-source mapping (under the activity condition)."""

    @property
    def queue_name(self) -> str: ...
    @property
    def busy(self) -> bool: ...
    @property
    def active_batches(self) -> int: ...
    @property
    def held_message_ids(self) -> set[str]: ...
    @property
    def paused(self) -> bool: ...


class StreamSource(Protocol):
    """What the scheduler reads of a DynamoDB-stream event source (under the condition)."""

    def pending(self) -> tuple[list[str], float | None]: ...


class IdleScheduler:
    """Decides when the pipeline is idle, and moves the clock when only the clock is missing.

    :param sources: the event-source mappings whose queues must drain.
    :param streams: the DynamoDB-stream event sources whose records must all be delivered.
    :param snapshot: a queue's messages by state, by queue name.
    :param other_work: descriptions of other work in flight (invocations, move tasks).
    :param now_ms: SQS's virtual clock.
    :param advance: moves SQS's virtual clock forward by seconds.
    """

    def __init__(
        self,
        *,
        activity: Activity,
        sources: Callable[[], Sequence[EventSource]],
        streams: Callable[[], Sequence[StreamSource]] = lambda: (),
        snapshot: Callable[[str], QueueSnapshot],
        other_work: Callable[[], list[str]],
        now_ms: Callable[[], float],
        advance: Callable[[float], None],
        on_event: Callable[[str], None],
    ) -> None:
        self._activity = activity
        self._sources = sources
        self._streams = streams
        self._snapshot = snapshot
        self._other_work = other_work
        self._now_ms = now_ms
        self._advance = advance
        self._on_event = on_event

    def run_until_idle(self, timeout: float, *, fast_forward: bool) -> None:
        deadline = time.monotonic() + timeout
        condition = self._activity.condition
        while True:
            with condition:
                pending, stalled_until = self.pending_work()
                if not pending:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"not idle after {timeout:.1f} s; still pending: {'; '.join(pending)}"
                    )
                if not (fast_forward and stalled_until is not None):
                    condition.wait(min(remaining, _IDLE_RECHECK_SECONDS))
                    continue
            # Outside the condition: moving the clock takes moto's lock and wakes the pollers.
            jump = max(stalled_until - self._now_ms(), 0.0) / 1000 + 0.001
            self._on_event(f"fast-forward: SQS clock +{jump:.3f} s")
            self._advance(jump)

    def pending_work(self) -> tuple[list[str], float | None]:
        """What keeps the pipeline busy, and when the clock must show for it all to resume
        (set only when nothing but visibility timeouts and delays is left)."""
        pending: list[str] = []
        only_waiting_for_clock = True
        resume_at: float | None = None
        for source in self._sources():
            name = source.queue_name
            snapshot = self._snapshot(name)
            held = source.held_message_ids
            if snapshot.visible:
                paused = " (event source paused)" if source.paused else ""
                pending.append(f"{name}: {snapshot.visible} visible message(s){paused}")
                only_waiting_for_clock = False
            if source.busy:
                pending.append(f"{name}: {source.active_batches} batch(es) being processed")
                only_waiting_for_clock = False
            waiting = {
                message_id: moment
                for message_id, moment in {**snapshot.in_flight, **snapshot.delayed}.items()
                if message_id not in held
            }
            if waiting:
                pending.append(
                    f"{name}: {len(waiting)} message(s) waiting for a visibility timeout or delay"
                )
                earliest = min(waiting.values())
                resume_at = earliest if resume_at is None else min(resume_at, earliest)
        for stream in self._streams():
            described, window_ends = stream.pending()
            pending.extend(described)
            if not described:
                continue
            if window_ends is None:
                only_waiting_for_clock = False
            else:
                resume_at = window_ends if resume_at is None else min(resume_at, window_ends)
        other = self._other_work()
        if other:
            pending.extend(other)
            only_waiting_for_clock = False
        return pending, resume_at if only_waiting_for_clock else None
