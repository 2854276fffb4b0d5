"""Lambda functions of the emulator: one worker process per concurrent execution, as on Lambda.

A worker runs ``_lambda_runtime.py`` as a script with the function's asset folder as its working
directory and task root, exactly the template's environment plus what the Lambda service sets,
and nothing of the emulator on its path. Module-level code runs once per warm worker; a timeout
kills the worker, and the next invocation starts a fresh one.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from audit_stack.local.control.activity import Activity
from audit_stack.local.deploy.model import FunctionSpec
from audit_stack.local.runtime._lambda_runtime import BOOTSTRAP_OPTION, LOG_END

RUNTIME_SCRIPT = Path(__file__).with_name("_lambda_runtime.py")
# Lambda's limit for the init phase (module-level code), which the function timeout excludes.
INIT_TIMEOUT_SECONDS = 10.0
# How long to wait for a worker's last log lines after its answer (they are flushed before it).
_LOG_DRAIN_SECONDS = 2.0
# Lambda's payload limits: a synchronous request or response, an asynchronous (Event) request.
SYNC_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT_BYTES = 1024 * 1024
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


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


class TooManyRequestsError(RuntimeError):
    """The function's reserved concurrency is in use (Lambda's 429 TooManyRequestsException)."""


class InvalidRequestContentError(ValueError):
    """The payload is not JSON (Lambda's 400 InvalidRequestContentException)."""


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


def site_packages() -> list[str]:
    """The site-packages folders of this interpreter: the stand-in for layer and runtime SDK."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


class _LogReader(threading.Thread):
    """Reads one output stream of a worker line by line, noting each request's end marker."""

    def __init__(self, stream: IO[bytes], sink: Callable[[str], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._stream = stream
        self._sink = sink
        self._ended: set[str] = set()
        self._condition = threading.Condition()

    def run(self) -> None:
        for raw in iter(self._stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if line.endswith(LOG_END) and LOG_END in line[:-1]:
                text, _, marker = line[:-1].rpartition(LOG_END)
                if text:
                    self._sink(text)
                with self._condition:
                    self._ended.add(marker)
                    self._condition.notify_all()
            else:
                self._sink(line)
        with self._condition:
            self._ended.add("*eof*")
            self._condition.notify_all()

    def wait_for_end(self, request_id: str, timeout: float) -> None:
        with self._condition:
            self._condition.wait_for(
                lambda: request_id in self._ended or "*eof*" in self._ended, timeout
            )
            self._ended.discard(request_id)


class _Worker:
    """One execution environment: a process running the runtime script for one function."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: dict[str, str],
        on_log: Callable[[str], None],
        bootstrap: Sequence[str] = (),
    ) -> None:
        self.spec = spec
        self._lines: list[str] = []
        self._on_log = on_log
        # The handler's CPU seconds in the last invocation, as the worker reported it.
        self.last_cpu_seconds: float | None = None
        read_fd, write_fd = os.pipe()
        try:
            self.process = subprocess.Popen(
                # -I: no PYTHONPATH, user site or script folder on sys.path; -S: no .pth files
                # (an editable install of the emulator must not leak in); -B: the task root is
                # read-only on Lambda, so no __pycache__ in the cloud assembly.
                [
                    sys.executable,
                    "-I",
                    "-S",
                    "-B",
                    "-u",
                    str(RUNTIME_SCRIPT),
                    str(write_fd),
                    *site_packages(),
                    *(f"{BOOTSTRAP_OPTION}{instruction}" for instruction in bootstrap),
                ],
                cwd=spec.code_dir,
                env=environment,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
                # Its own process group: Ctrl-C in the terminal reaches the emulator only, and
                # killing the group also ends anything the function started.
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        self._results = read_fd
        self._buffer = b""
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            _LogReader(self.process.stdout, self._log, f"{spec.name}-stdout"),
            _LogReader(self.process.stderr, self._log, f"{spec.name}-stderr"),
        ]
        for reader in self._readers:
            reader.start()

    def _log(self, line: str) -> None:
        self._lines.append(line)
        self._on_log(line)

    def take_logs(self) -> tuple[str, ...]:
        lines, self._lines = tuple(self._lines), []
        return lines

    def _read_answer(self, deadline: float) -> dict[str, Any] | None:
        """The runtime's next answer; None if the deadline passed; {"kind": "exit"} on EOF."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._results], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self._results, 65536)
            if not chunk:
                return {"kind": "exit"}
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _drain_logs(self, marker: str) -> None:
        for reader in self._readers:
            reader.wait_for_end(marker, _LOG_DRAIN_SECONDS)

    def start(self) -> dict[str, Any] | None:
        """Run the init phase; the error document if it failed."""
        answer = self._read_answer(time.monotonic() + INIT_TIMEOUT_SECONDS)
        if answer is None:
            self.kill()
            return {
                "errorType": "Runtime.InitTimeout",
                "errorMessage": f"Init phase timed out after {INIT_TIMEOUT_SECONDS:.2f} seconds",
            }
        if answer["kind"] == "exit":
            return self._exit_error("init")
        self._drain_logs("init")
        if answer["kind"] == "init_error":
            self.kill()
            error: dict[str, Any] = answer["error"]
            return error
        return None

    def invoke(
        self, request_id: str, payload: bytes, invoked_arn: str, trace_id: str
    ) -> tuple[bool, Any]:
        """(True, payload text) or (False, error document); the worker is dead after a timeout."""
        started = time.monotonic()
        deadline = started + self.spec.timeout_seconds
        request = {
            "request_id": request_id,
            "payload": payload.decode("utf-8"),
            "deadline_ms": int((time.time() + self.spec.timeout_seconds) * 1000),
            "invoked_function_arn": invoked_arn,
            "trace_id": trace_id,
        }
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return False, self._exit_error(request_id)
        answer = self._read_answer(deadline)
        if answer is None:
            self.kill()
            # Reaped before anyone asks whether it is alive: it must never go back to the pool.
            self.process.wait()
            message = (
                f"RequestId: {request_id} Error: Task timed out after "
                f"{self.spec.timeout_seconds:.2f} seconds"
            )
            self._log(message)
            return False, {"errorType": "Sandbox.Timedout", "errorMessage": message}
        if answer["kind"] == "exit":
            return False, self._exit_error(request_id)
        self._drain_logs(request_id)
        self.last_cpu_seconds = answer.get("cpu_seconds")
        if answer["kind"] == "result":
            return True, answer["payload"]
        error = {"requestId": request_id, **answer["error"]}
        return False, error

    def _exit_error(self, request_id: str) -> dict[str, Any]:
        code = self.process.wait()
        status = f"signal: {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        message = f"RequestId: {request_id} Error: Runtime exited with error: {status}"
        self._log(message)
        return {"errorType": "Runtime.ExitError", "errorMessage": message}

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """End the process group now; safe from any thread (the owner then calls release)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def release(self) -> None:
        """Kill the worker and free its pipes and threads; only by the thread that owns it."""
        self.kill()
        self.process.wait()
        for reader in self._readers:
            reader.join()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                # stdin may hold an unsent request for the dead process: closing flushes it.
                with contextlib.suppress(OSError):
                    stream.close()
        if self._results >= 0:
            os.close(self._results)
            self._results = -1


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
        bootstrap: Sequence[str] = (),
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        """:param bootstrap: ``MODULE:FUNCTION:URL:PEM_HEX`` calls each worker makes before it
        imports the handler (the emulator's SNS certificate; see ``_lambda_runtime.py``).
        :param credentials: the AWS_* credential variables of its workers (by default dummy
        ones): the access key id the emulator maps to the function's execution role."""
        self.spec = spec
        self._bootstrap = tuple(bootstrap)
        self._credentials = dict(credentials or DUMMY_CREDENTIALS)
        self._endpoint_url = endpoint_url
        self._region = region
        self._on_log = on_log
        self._lock = threading.Lock()
        # Notified whenever a worker is freed, so close() can wait for busy ones.
        self._lock_free = threading.Condition(self._lock)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._active = 0
        self._closed = False
        # Handler CPU seconds by request id, until the registry records the invocation.
        self._cpu_seconds: dict[str, float] = {}

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

    def _new_worker(self) -> _Worker:
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        worker = _Worker(
            self.spec,
            self.environment(stream),
            lambda line: self._on_log(self.spec.name, line),
            self._bootstrap,
        )
        with self._lock:
            self._all.add(worker)
            if self._closed:
                worker.kill()
        return worker

    def invoke(self, payload: bytes, request_id: str) -> tuple[bool, Any, tuple[str, ...]]:
        """Run one invocation: (succeeded, payload text or error document, its log lines)."""
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
            dead: list[_Worker] = []
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
                    return False, {"requestId": request_id, **init_error}, worker.take_logs()
            trace_id = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
            succeeded, outcome = worker.invoke(request_id, payload, self.spec.arn, trace_id)
            if succeeded and len(outcome.encode()) > SYNC_PAYLOAD_LIMIT_BYTES:
                succeeded, outcome = False, response_too_large(request_id, len(outcome.encode()))
            if worker.last_cpu_seconds is not None:
                with self._lock:
                    self._cpu_seconds[request_id] = worker.last_cpu_seconds
            logs = worker.take_logs()
            if worker.alive:
                with self._lock:
                    if not self._closed:
                        self._idle.append(worker)
                        worker = None
            if worker is not None:
                self._discard(worker)
            return succeeded, outcome, logs
        finally:
            with self._lock:
                self._active -= 1

    def _discard(self, worker: _Worker) -> None:
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

    def pop_cpu_seconds(self, request_id: str) -> float | None:
        """The handler CPU seconds its worker reported for the invocation (once)."""
        with self._lock:
            return self._cpu_seconds.pop(request_id, None)

    def kill_busy_workers(self) -> list[int]:
        """Kill the workers running an invocation now (the invocations fail with
        Runtime.ExitError, as a crashed execution environment's do); their process ids."""
        with self._lock:
            busy = [worker for worker in self._all if worker not in self._idle]
        for worker in busy:
            worker.kill()
        return [worker.process.pid for worker in busy]


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
            succeeded, outcome, logs = runtime.invoke(payload, request_id)
        finally:
            with self._lock:
                self.in_flight -= 1
        duration = time.monotonic() - started
        if succeeded:
            body, response, error = outcome.encode(), json.loads(outcome), None
        else:
            body, response, error = json.dumps(outcome).encode(), None, outcome
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
                cpu_seconds=runtime.pop_cpu_seconds(request_id),
            )
        )
        self.activity.notify()
        return InvocationResult(request_id, body, None if succeeded else "Unhandled", logs)

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
