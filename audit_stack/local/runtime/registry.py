"""Every function of the deployment (``FunctionRegistry``): found by name or ARN as Lambda's
FunctionName accepts it, invoked synchronously or asynchronously, with a log of finished
invocations for tests and verbose output.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audit_stack.local.control.activity import Activity
from audit_stack.local.runtime.pool import FunctionRuntime


@dataclass(frozen=True)
class Invocation:
    """One finished invocation, for tests and verbose output."""

    function_name: str
    request_id: str
    trigger: str
    event: Any
    started_at: float
    duration_seconds: float
    response: Any
    error: dict[str, Any] | None
    logs: tuple[str, ...]
    cpu_seconds: float | None = None
    """the handler's CPU time as its worker measured it (None: the worker never answered)"""

    @property
    def succeeded(self) -> bool:
        return self.error is None

    @property
    def timed_out(self) -> bool:
        return self.error is not None and self.error.get("errorType") == "Sandbox.Timedout"


@dataclass(frozen=True)
class InvocationResult:
    """What Invoke answers: the payload, and FunctionError "Unhandled" when the function failed."""

    request_id: str
    payload: bytes
    function_error: str | None
    logs: tuple[str, ...]


class FunctionNotFoundError(LookupError):
    """No function of the stack has this name or ARN."""


class InvalidRequestContentError(ValueError):
    """The payload is not JSON (Lambda's 400 InvalidRequestContentException)."""


@dataclass
class FunctionRegistry:
    """All functions of the deployment, found by name or ARN, with a log of their invocations."""

    activity: Activity
    runtimes: dict[str, FunctionRuntime] = field(default_factory=dict)
    invocations: deque[Invocation] = field(default_factory=lambda: deque(maxlen=10_000))
    in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, runtime: FunctionRuntime) -> None:
        self.runtimes[runtime.spec.name] = runtime

    def find(self, name_or_arn: str) -> FunctionRuntime:
        """Lambda's FunctionName forms: name, full ARN, partial ARN (``123:function:name``)."""
        name = name_or_arn
        if ":function:" in name:
            name = name.split(":function:", 1)[1].split(":", 1)[0]
        runtime = self.runtimes.get(name)
        if runtime is None:
            raise FunctionNotFoundError(name_or_arn)
        return runtime

    def invoke(self, name_or_arn: str, payload: bytes, *, trigger: str) -> InvocationResult:
        runtime = self.find(name_or_arn)
        try:
            event = json.loads(payload) if payload else None
        except ValueError:
            raise InvalidRequestContentError("Could not parse request body into json") from None
        if not payload:
            payload = b"{}"
        request_id = str(uuid.uuid4())
        with self._lock:
            self.in_flight += 1
        started_at, started = time.time(), time.monotonic()
        try:
            execution = runtime.invoke(payload, request_id)
        finally:
            with self._lock:
                self.in_flight -= 1
        duration = time.monotonic() - started
        outcome, logs = execution.outcome, execution.logs
        if outcome.payload is not None and outcome.error is None:
            body, response, error = outcome.payload.encode(), json.loads(outcome.payload), None
        else:
            body, response, error = json.dumps(outcome.error).encode(), None, outcome.error
        self.invocations.append(
            Invocation(
                function_name=runtime.spec.name,
                request_id=request_id,
                trigger=trigger,
                event=event,
                started_at=started_at,
                duration_seconds=duration,
                response=response,
                error=error,
                logs=logs,
                cpu_seconds=outcome.cpu_seconds,
            )
        )
        self.activity.notify()
        return InvocationResult(request_id, body, None if error is None else "Unhandled", logs)

    def invoke_async(
        self, name_or_arn: str, payload: bytes, on_error: Callable[[BaseException], None]
    ) -> threading.Thread:
        """Accept an asynchronous (Event) invocation and run it in the background, no retries."""
        self.find(name_or_arn)
        json.loads(payload or b"{}")
        # In flight from the moment it is accepted, so that run_until_idle waits for it.
        with self._lock:
            self.in_flight += 1

        def run() -> None:
            try:
                self.invoke(name_or_arn, payload, trigger="event")
            except Exception as error:
                on_error(error)
            finally:
                with self._lock:
                    self.in_flight -= 1
                self.activity.notify()

        thread = threading.Thread(target=run, name="lambda-event-invoke", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        for runtime in self.runtimes.values():
            runtime.close()

    def worker_pids(self) -> list[int]:
        return [pid for runtime in self.runtimes.values() for pid in runtime.worker_pids]
