"""Fault injection, one mechanism for every kind: a fixed fault that holds and/or fails each
matching request for a block (``LocalAuditPipeline.inject_fault``), and a seeded share of
failures (``instrumentation.inject_faults``). The endpoint asks it about every request, and the
event-source mappings about every invocation they make."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from audit_stack.local.http.errors import ApiError, Injected
from audit_stack.local.http.operations import Operation, normalise

DEFAULT_MESSAGE = "Injected by LocalAuditPipeline"


def status_for(error_code: str) -> str:
    """The HTTP status AWS answers an error code with."""
    if error_code.startswith("Internal") or error_code == "ServiceException":
        return "500 Internal Server Error"
    if error_code == "TooManyRequestsException":
        return "429 Too Many Requests"
    return "400 Bad Request"


@dataclass(frozen=True)
class InjectedFault:
    """One way an injected request fails.

    :param error_code: the AWS error code answered, e.g. ``ThrottlingException``; codes starting
        with ``Internal`` answer HTTP 500, others 400.
    :param after_request: perform the request first, then answer the error: the write happened
        but the caller never learns it (a lost response), so a retry meets its own earlier write.
    """

    error_code: str
    after_request: bool = False

    @property
    def status(self) -> str:
        return status_for(self.error_code)

    @property
    def label(self) -> str:
        return f"{self.error_code} (after the write)" if self.after_request else self.error_code


# What DynamoDB answers a write under pressure or in trouble: both throttling codes, and server
# errors that happen before or after the item is stored.
DYNAMODB_WRITE_FAULTS: tuple[InjectedFault, ...] = (
    InjectedFault("ProvisionedThroughputExceededException"),
    InjectedFault("ThrottlingException"),
    InjectedFault("InternalServerError"),
    InjectedFault("InternalServerError", after_request=True),
)


class FaultInjector:
    """Fails a seeded-random share of one operation's requests; deterministic per request order.

    The n-th matching request gets the same decision in every run with the same seed (which
    request is n-th may vary between runs when requests arrive concurrently).
    """

    def __init__(
        self, operation: str, *, rate: float, faults: Sequence[InjectedFault], seed: int
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate: must be between 0 and 1, not {rate}")
        if not faults:
            raise ValueError("faults: give at least one InjectedFault")
        self.operation = normalise(operation)
        self.rate = rate
        self.faults = tuple(faults)
        self.seed = seed
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.seen = 0
        self.injected: Counter[str] = Counter()

    def decide(self) -> InjectedFault | None:
        """The fault for the next matching request, or None to let it through."""
        with self._lock:
            self.seen += 1
            # Both draws happen for every request, so one decision never shifts the next.
            fails = self._random.random() < self.rate
            fault = self.faults[self._random.randrange(len(self.faults))]
            if not fails:
                return None
            self.injected[fault.label] += 1
            return fault

    @property
    def injected_total(self) -> int:
        with self._lock:
            return sum(self.injected.values())


@dataclass
class Fault:
    """A fixed fault of one operation (optionally of one function, for ``lambda:Invoke``)."""

    operation: str
    error_code: str | None
    message: str
    latency: float
    function_name: str | None = None
    released: threading.Event = field(default_factory=threading.Event)

    def matches(self, operation: Operation) -> bool:
        if self.operation != operation.action:
            return False
        if self.function_name is None:
            return True
        invoked = operation.function_name or ""
        # FunctionName may be a name, a full ARN or a partial ARN.
        return invoked.rsplit(":function:", 1)[-1].split(":", 1)[0] == self.function_name


class Faults:
    """Every fault in force, asked once per request or event-source invocation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fixed: list[Fault] = []
        self._seeded: list[FaultInjector] = []
        self._stopped = False

    @contextmanager
    def fixed(
        self,
        operation: str,
        *,
        error_code: str | None,
        message: str = DEFAULT_MESSAGE,
        latency: float = 0.0,
        function_name: str | None = None,
    ) -> Iterator[Fault]:
        """Hold each matching request ``latency`` seconds, then fail it with ``error_code``."""
        if error_code is None and latency <= 0:
            raise ValueError("inject_fault: give an error_code, a latency, or both")
        fault = Fault(normalise(operation), error_code, message, latency, function_name)
        with self._lock:
            self._fixed.append(fault)
        try:
            yield fault
        finally:
            with self._lock:
                self._fixed.remove(fault)
            # Requests still held by the latency go on at once, as a network recovering would.
            fault.released.set()

    @contextmanager
    def seeded(
        self, operation: str, *, rate: float, faults: Sequence[InjectedFault], seed: int
    ) -> Iterator[FaultInjector]:
        """Fail ``rate`` of ``operation``'s requests (seeded) with one of ``faults``."""
        injector = FaultInjector(operation, rate=rate, faults=faults, seed=seed)
        with self._lock:
            self._seeded.append(injector)
        try:
            yield injector
        finally:
            with self._lock:
                self._seeded.remove(injector)

    def apply(self, operation: Operation) -> Injected | None:
        """Wait out a matching latency; what to answer instead, or None to go ahead."""
        with self._lock:
            fixed = next((fault for fault in self._fixed if fault.matches(operation)), None)
            injector = next(
                (found for found in self._seeded if found.operation == operation.action), None
            )
            stopped = self._stopped
        if fixed is not None and not stopped:
            # Waits for the latency, or until the fault is lifted or the emulator stops.
            fixed.released.wait(fixed.latency)
            if fixed.error_code is not None and not fixed.released.is_set():
                error = ApiError(fixed.error_code, fixed.message, status_for(fixed.error_code))
                return Injected(error, after_request=False, label=fixed.error_code)
        if injector is not None:
            decided = injector.decide()
            if decided is not None:
                error = ApiError(decided.error_code, DEFAULT_MESSAGE, decided.status)
                return Injected(error, decided.after_request, decided.label)
        return None

    def release_all(self) -> None:
        """Let every held request go on (the emulator is stopping)."""
        with self._lock:
            self._stopped = True
            for fault in self._fixed:
                fault.released.set()
