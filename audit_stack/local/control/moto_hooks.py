"""Process-wide hooks into moto's in-process backends: one request at a time, SQS's virtual clock,
SQS's retention (expired messages are deleted, as on AWS, not received and dead-lettered), and
DynamoDB's PartiQL INSERT with parameters (``partiql_inserts``).

moto's backends are module-level state shared by every server in the process, so these hooks are
installed once per running emulator and removed again when it stops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import moto.sqs.models
from moto.core.utils import unix_time as _real_unix_time

from audit_stack.local.control.partiql_inserts import PartiqlInsertHooks
from audit_stack.local.control.service_errors import ServiceErrorHooks

# moto's backends are not thread-safe: e.g. DeleteMessage rebuilds a queue's message list, so a
# SendMessage that appends meanwhile would be lost. Every request that reaches moto holds this.
MOTO_LOCK = threading.RLock()
_holder = threading.local()
# Typed as Any: these hooks replace names that moto.sqs.models imported for itself.
_SQS_MODELS: Any = moto.sqs.models


@dataclass(frozen=True)
class QueueSnapshot:
    """What an SQS queue holds at one instant of its virtual clock (times in epoch ms)."""

    name: str
    visible: int
    in_flight: dict[str, float]
    """message id -> when it becomes visible again"""
    delayed: dict[str, float]
    """message id -> when its delay ends"""

    @property
    def total(self) -> int:
        return self.visible + len(self.in_flight) + len(self.delayed)

    def next_change_ms(self) -> float | None:
        """When a message next becomes receivable by itself, on the virtual clock."""
        moments = [*self.in_flight.values(), *self.delayed.values()]
        return min(moments) if moments else None


class MotoHooks:
    """Installs the serialising lock around moto's SQS long-poll wait and the virtual clock."""

    def __init__(self) -> None:
        self._offset_ms = 0.0
        self._installed = False
        self._originals: dict[str, Any] = {}
        self._service_errors = ServiceErrorHooks()
        self._partiql_inserts = PartiqlInsertHooks()

    def install(self) -> None:
        if self._installed:
            return
        self._service_errors.install()
        self._partiql_inserts.install()
        self._originals = {
            "unix_time": _SQS_MODELS.unix_time,
            "unix_time_millis": _SQS_MODELS.unix_time_millis,
            "wait_for_messages": _SQS_MODELS.Queue.wait_for_messages,
            "retention_check": _SQS_MODELS.SQSBackend.is_message_valid_based_on_retention_period,
            "receive_message": _SQS_MODELS.SQSBackend.receive_message,
        }
        # moto.sqs.models imported these by name: replacing the module's names moves the clock
        # of every SQS time computation (visibility, delays, retention, timestamps) and nothing
        # else in moto.
        _SQS_MODELS.unix_time = self._unix_time
        _SQS_MODELS.unix_time_millis = self._unix_time_millis
        original_wait: Callable[[Any, int], None] = self._originals["wait_for_messages"]

        def wait_for_messages(queue: Any, timeout: int) -> None:
            # A long poll waits inside a request that holds MOTO_LOCK: let other requests in.
            depth = getattr(_holder, "depth", 0)
            for _ in range(depth):
                MOTO_LOCK.release()
            try:
                original_wait(queue, timeout)
            finally:
                for _ in range(depth):
                    MOTO_LOCK.acquire()

        _SQS_MODELS.Queue.wait_for_messages = wait_for_messages
        _SQS_MODELS.SQSBackend.is_message_valid_based_on_retention_period = _within_retention
        original_receive: Callable[..., Any] = self._originals["receive_message"]

        def receive_message(backend: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            # moto would mark an expired message received (a receive count towards the DLQ)
            # and hand it out later; SQS deletes it instead.
            drop_expired(backend.get_queue(queue_name))
            return original_receive(backend, queue_name, *args, **kwargs)

        _SQS_MODELS.SQSBackend.receive_message = receive_message
        self._installed = True

    def uninstall(self) -> None:
        if not self._installed:
            return
        _SQS_MODELS.unix_time = self._originals["unix_time"]
        _SQS_MODELS.unix_time_millis = self._originals["unix_time_millis"]
        _SQS_MODELS.Queue.wait_for_messages = self._originals["wait_for_messages"]
        _SQS_MODELS.SQSBackend.is_message_valid_based_on_retention_period = self._originals[
            "retention_check"
        ]
        _SQS_MODELS.SQSBackend.receive_message = self._originals["receive_message"]
        self._service_errors.uninstall()
        self._partiql_inserts.uninstall()
        self._installed = False
        self._offset_ms = 0.0

    @property
    def offset_seconds(self) -> float:
        """How far SQS's clock is ahead of the real one."""
        return self._offset_ms / 1000

    def now_ms(self) -> float:
        """SQS's virtual time, epoch milliseconds."""
        return self._unix_time_millis()

    def advance(self, seconds: float) -> None:
        """Move SQS's clock forward, delete the messages that outlived their queue's retention,
        and wake every waiting long poll to look again."""
        if seconds < 0:
            raise ValueError("advance_time: seconds must not be negative (time only moves on)")
        with MOTO_LOCK:
            self._offset_ms += seconds * 1000
        for queue in _all_queues():
            with MOTO_LOCK:
                drop_expired(queue)
        self._wake_long_polls()

    def _unix_time(self, dt: Any = None) -> float:
        if dt is not None:
            return float(_real_unix_time(dt))
        # time.time() is what moto's unix_time() computes through two datetimes; SQS reads the
        # clock for every queued message on every receive, so the cheap form keeps receives fast.
        return time.time() + self._offset_ms / 1000

    def _unix_time_millis(self, dt: Any = None) -> float:
        return self._unix_time(dt) * 1000.0

    def _wake_long_polls(self) -> None:
        for queue in _all_queues():
            with queue._messages_lock:
                queue._messages_lock.notify_all()


def _within_retention(backend: Any, queue_name: str, message: Any) -> bool:
    """moto's retention check, reading the period directly: moto reads it through
    get_queue_attributes, which also counts the queue's messages, so each message received cost a
    pass over the whole queue and a backlog made receiving quadratically slow."""
    retention_seconds = int(backend.get_queue(queue_name).message_retention_period)
    return bool(retention_seconds + message.sent_timestamp / 1000 > _SQS_MODELS.unix_time())


def drop_expired(queue: Any) -> int:
    """Delete a queue's messages older than its MessageRetentionPeriod (moto's lock held);
    how many."""
    retention_ms = int(queue.message_retention_period) * 1000
    now_ms = _SQS_MODELS.unix_time() * 1000
    expired = [
        message for message in queue._messages if message.sent_timestamp + retention_ms <= now_ms
    ]
    if expired:
        gone = {id(message) for message in expired}
        queue._messages = [message for message in queue._messages if id(message) not in gone]
        for message in expired:
            queue.pending_messages.discard(message)
    return len(expired)


def _all_queues() -> Iterator[Any]:
    with MOTO_LOCK:
        queues = [
            queue
            for account in list(_SQS_MODELS.sqs_backends.values())
            for backend in list(account.values())
            for queue in list(backend.queues.values())
        ]
    yield from queues


def queue_snapshot(account_id: str, region: str, queue_name: str) -> QueueSnapshot:
    """The messages of a queue by state, read from moto under its lock."""
    with MOTO_LOCK:
        queue = _SQS_MODELS.sqs_backends[account_id][region].queues.get(queue_name)
        if queue is None:
            return QueueSnapshot(queue_name, 0, {}, {})
        visible = 0
        in_flight: dict[str, float] = {}
        delayed: dict[str, float] = {}
        for message in list(queue._messages):
            if message.delayed:
                delayed[message.id] = float(message.delayed_until)
            elif message.visible:
                visible += 1
            else:
                in_flight[message.id] = float(message.visible_at)
        return QueueSnapshot(queue_name, visible, in_flight, delayed)


@contextmanager
def serialized() -> Iterator[None]:
    """Hold moto's lock around a request to moto (a long poll lets go of it while it waits)."""
    with MOTO_LOCK:
        _holder.depth = getattr(_holder, "depth", 0) + 1
        try:
            yield
        finally:
            _holder.depth -= 1
