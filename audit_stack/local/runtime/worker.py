"""One execution environment of a function: a process running ``_lambda_runtime.py``.

The script runs with the function's asset folder as its working directory and task root, the
environment its pool gives it, and nothing of the emulator on its path. Module-level code runs
once (the init phase); each invocation is one request line in, one answer line out; a timeout
kills the process.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from audit_stack.local.deploy.model import FunctionSpec
from audit_stack.local.runtime._lambda_runtime import BOOTSTRAP_OPTION, LOG_END

RUNTIME_SCRIPT = Path(__file__).with_name("_lambda_runtime.py")
# Lambda's limit for the init phase (module-level code), which the function timeout excludes.
INIT_TIMEOUT_SECONDS = 10.0
# How long to wait for a worker's last log lines after its answer (they are flushed before it).
_LOG_DRAIN_SECONDS = 2.0


@dataclass(frozen=True)
class Outcome:
    """What one invocation came to: the handler's response (JSON text), or Lambda's error
    document (``errorType``, ``errorMessage``)."""

    payload: str | None = None
    error: dict[str, Any] | None = None
    cpu_seconds: float | None = None
    """the handler's CPU time as the worker measured it (None: the worker never answered)"""

    @property
    def succeeded(self) -> bool:
        return self.error is None


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


class Worker:
    """One execution environment: a process running the runtime script for one function."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: dict[str, str],
        on_log: Callable[[str], None],
        python_path: Sequence[str],
        bootstrap: Sequence[str] = (),
    ) -> None:
        self.spec = spec
        self._lines: list[str] = []
        self._on_log = on_log
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
                    *python_path,
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

    def invoke(self, request_id: str, payload: bytes, invoked_arn: str, trace_id: str) -> Outcome:
        """Run one invocation in this worker; the worker is dead after a timeout."""
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
            return Outcome(error=self._exit_error(request_id))
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
            return Outcome(error={"errorType": "Sandbox.Timedout", "errorMessage": message})
        if answer["kind"] == "exit":
            return Outcome(error=self._exit_error(request_id))
        self._drain_logs(request_id)
        cpu_seconds = answer.get("cpu_seconds")
        if answer["kind"] == "result":
            return Outcome(payload=answer["payload"], cpu_seconds=cpu_seconds)
        return Outcome(error={"requestId": request_id, **answer["error"]}, cpu_seconds=cpu_seconds)

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
