"""One condition variable that every state change of the emulator notifies: waits need no sleeps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Activity:
    """Waiters re-check their state whenever something may have changed.

    ``generation`` counts changes that can make messages receivable (sends, publishes, visibility
    changes, clock moves); other notifications (a finished receive or invocation) only wake
    waiters without counting, so idle pollers do not wake each other in a loop.
    """

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.generation = 0
        self._notifications = 0

    def changed(self) -> None:
        with self.condition:
            self.generation += 1
            self._notifications += 1
            self.condition.notify_all()

    def notify(self) -> None:
        with self.condition:
            self._notifications += 1
            self.condition.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds (checked after every notification) or time runs out.

        The predicate runs without the lock: it may call the emulator, whose request threads
        notify this condition when they finish.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self.condition:
                seen = self._notifications
            if predicate():
                return True
            with self.condition:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if self._notifications == seen:
                    self.condition.wait(remaining)
