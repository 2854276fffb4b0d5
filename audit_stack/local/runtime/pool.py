"""The execution environments of one function (``FunctionRuntime``): warm workers are reused,
one invocation per worker at a time, as on Lambda; the environment Lambda gives them; its
reserved concurrency and payload limits.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from audit_stack.local.deploy.model import FunctionSpec
from audit_stack.local.runtime.worker import (
    INIT_TIMEOUT_SECONDS,
    RUNTIME_SCRIPT,
    Outcome,
    Worker,
)

# Lambda's payload limits: a synchronous request or response, an asynchronous (Event) request.
SYNC_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT_BYTES = 1024 * 1024
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class TooManyRequestsError(RuntimeError):
    """The function's reserved concurrency is in use (Lambda's 429 TooManyRequestsException)."""


@dataclass(frozen=True)
class Execution:
    """One invocation run by the pool: its outcome and the log lines its worker wrote."""

    outcome: Outcome
    logs: tuple[str, ...]


def response_too_large(request_id: str, size: int) -> dict[str, Any]:
    """Lambda's error when a function returns more than the synchronous payload limit."""
    return {
        "requestId": request_id,
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": (
            f"Response payload size ({size} bytes) exceeded maximum allowed payload size "
            f"({SYNC_PAYLOAD_LIMIT_BYTES} bytes)."
        ),
    }


# What Lambda sets but a function's configuration may change (not reserved): the template's
# values win. (TZ has not been reserved since 2022; Lambda's LANG is en_US.UTF-8, which many
# hosts lack, so Python would add LC_CTYPE: C.UTF-8 is the same encoding and always installed.)
_RUNTIME_DEFAULTS: Final = {
    "TZ": ":UTC",
    "LANG": "C.UTF-8",
    "PATH": "/usr/local/bin:/usr/bin/:/bin",
}


class FunctionRuntime:
    """The execution environments of one function: warm workers are reused, one per invocation."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        endpoint_url: str,
        region: str,
        on_log: Callable[[str, str], None],
        python_path: Sequence[str],
        bootstrap: Sequence[str] = (),
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        """``python_path``: the folders after the task root on the function's path (its layers
        and the runtime's libraries, ``python_path.LambdaLibraries``), as on Lambda.

        :param bootstrap: ``MODULE:FUNCTION:URL:PEM_HEX`` calls each worker makes before it
            imports the handler (the emulator's SNS certificate; see ``_lambda_runtime.py``).
        :param credentials: the AWS_* credential variables of its workers (by default dummy
            ones): the access key id the emulator maps to the function's execution role."""
        self.spec = spec
        self.python_path = tuple(python_path)
        self._bootstrap = tuple(bootstrap)
        self._credentials = dict(credentials or DUMMY_CREDENTIALS)
        self._endpoint_url = endpoint_url
        self._region = region
        self._on_log = on_log
        self._lock = threading.Lock()
        # Notified whenever a worker is freed, so close() can wait for busy ones.
        self._lock_free = threading.Condition(self._lock)
        self._idle: list[Worker] = []
        self._all: set[Worker] = set()
        self._active = 0
        self._closed = False

    def environment(self, log_stream: str) -> dict[str, str]:
        """The worker's environment: the template's variables plus what Lambda itself sets."""
        spec = self.spec
        json_logs = spec.log_format.upper() == "JSON"
        reserved = {
            **self._credentials,
            # botocore sends every client to the emulator: handler code stays unchanged.
            "AWS_ENDPOINT_URL": self._endpoint_url,
            "AWS_REGION": self._region,
            "AWS_DEFAULT_REGION": self._region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_LOG_FORMAT": "JSON" if json_logs else "Text",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "LAMBDA_RUNTIME_DIR": str(RUNTIME_SCRIPT.parent),
            # A Lambda environment has no AWS config files and no instance metadata: the host's
            # ~/.aws must not change what the function does, and nothing may leave loopback.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if json_logs:
            reserved["AWS_LAMBDA_LOG_LEVEL"] = (spec.application_log_level or "INFO").upper()
        return {**_RUNTIME_DEFAULTS, **spec.environment, **reserved}

    def _new_worker(self) -> Worker:
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        worker = Worker(
            self.spec,
            self.environment(stream),
            lambda line: self._on_log(self.spec.name, line),
            self.python_path,
            self._bootstrap,
        )
        with self._lock:
            self._all.add(worker)
            if self._closed:
                worker.kill()
        return worker

    def invoke(self, payload: bytes, request_id: str) -> Execution:
        """Run one invocation in a warm worker, or in a new one after its init phase."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"function {self.spec.name} is shut down")
            reserved = self.spec.reserved_concurrency
            if reserved is not None and self._active >= reserved:
                raise TooManyRequestsError("Rate Exceeded.")
            self._active += 1
            worker = self._idle.pop() if self._idle else None
            # An execution environment that died while idle (killed, out of memory) is
            # replaced, as Lambda does, instead of failing the next invocation.
            dead: list[Worker] = []
            while worker is not None and not worker.alive:
                dead.append(worker)
                worker = self._idle.pop() if self._idle else None
        for corpse in dead:
            self._discard(corpse)
        try:
            if worker is None:
                worker = self._new_worker()
                init_error = worker.start()
                if init_error is not None:
                    self._discard(worker)
                    return Execution(
                        Outcome(error={"requestId": request_id, **init_error}), worker.take_logs()
                    )
            trace_id = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
            outcome = worker.invoke(request_id, payload, self.spec.arn, trace_id)
            size = len(outcome.payload.encode()) if outcome.payload is not None else 0
            if size > SYNC_PAYLOAD_LIMIT_BYTES:
                outcome = Outcome(
                    error=response_too_large(request_id, size), cpu_seconds=outcome.cpu_seconds
                )
            logs = worker.take_logs()
            if worker.alive:
                with self._lock:
                    if not self._closed:
                        self._idle.append(worker)
                        worker = None
            if worker is not None:
                self._discard(worker)
            return Execution(outcome, logs)
        finally:
            with self._lock:
                self._active -= 1

    def _discard(self, worker: Worker) -> None:
        worker.release()
        with self._lock:
            self._all.discard(worker)
            self._lock_free.notify_all()

    def close(self) -> None:
        """Kill every worker; a busy invocation then fails as its runtime exits, and its thread
        frees the worker, which this waits for."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            for worker in self._all:
                worker.kill()
        for worker in idle:
            self._discard(worker)
        with self._lock:
            self._lock_free.wait_for(lambda: not self._all, timeout=INIT_TIMEOUT_SECONDS)

    @property
    def worker_pids(self) -> list[int]:
        with self._lock:
            return [worker.process.pid for worker in self._all]

    def kill_busy_workers(self) -> list[int]:
        """Kill the workers running an invocation now (the invocations fail with
        Runtime.ExitError, as a crashed execution environment's do); their process ids."""
        with self._lock:
            busy = [worker for worker in self._all if worker not in self._idle]
        for worker in busy:
            worker.kill()
        return [worker.process.pid for worker in busy]
