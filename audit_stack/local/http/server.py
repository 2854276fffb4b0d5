"""The emulator's HTTP endpoint on loopback: one WSGI app in front of moto's.

For each request it decides the operation once (``operations.identify``), counts it (a
``RequestMeter``), asks IAM whether its caller may (``authorize``: AccessDenied in the service's
shape otherwise), applies any injected fault (a ``FaultSource``), answers the APIs the emulator
implements itself (``LocalApi``: Lambda Invoke, SQS message move tasks, CloudFormation's read
API), refuses the ones nobody implements with one uniform error, and passes the rest to moto, one
request at a time. Then it tells waiters (pollers, run_until_idle) that something changed.

Transport only: the services and instruments are registered by the pipeline through the
protocols below, so this package imports neither (``tests/unit/local/test_structure.py``).
"""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import ThreadedWSGIServer

from audit_stack.local.control.activity import Activity
from audit_stack.local.control.moto_hooks import serialized
from audit_stack.local.http.errors import (
    ApiError,
    Injected,
    Response,
    error_response,
    not_emulated,
)
from audit_stack.local.http.operations import Environ, Operation, identify, read_body

LOOPBACK = "127.0.0.1"
# Requests that cannot make a message receivable: they wake waiters without counting as a change.
_READ_ONLY = frozenset({"sqs:ReceiveMessage", "sqs:GetQueueAttributes", "sqs:ListQueues"})

StartResponse = Callable[..., Any]
Authorize = Callable[[Operation, Environ, bytes], ApiError | None]
"""None when the request may go on, else the error to answer (IAM's AccessDenied)."""


class LocalApi(Protocol):
    """An API (or part of one) that the emulator answers itself instead of moto."""

    OPERATIONS: frozenset[str]
    EXCLUSIVE: bool
    """True: the service's other operations are not emulated; False: moto answers them."""

    def handle(self, operation: Operation, environ: Environ, body: bytes) -> Response: ...


class FaultSource(Protocol):
    """Decides, per request, whether an injected fault answers it (``instruments.faults``)."""

    def apply(self, operation: Operation) -> Injected | None: ...


class RequestMeter(Protocol):
    """Watches every request: in progress for its block, then its answer (``instruments``)."""

    def request(self, operation: Operation) -> AbstractContextManager[None]: ...

    def record(
        self, operation: Operation, body: bytes, answer: Response, injected: Injected | None
    ) -> None: ...


class Endpoint:
    """The WSGI app: every request's one path through the emulator.

    :param local_apis: service -> the emulator's own implementation; in an exclusive one, an
        operation the implementation does not list is answered as not emulated (moto's answer
        would be about resources it never saw). ``serve`` adds one once it can answer (the
        stack's read API after the deployment).
    """

    def __init__(
        self,
        *,
        activity: Activity,
        faults: FaultSource,
        instrumentation: RequestMeter,
        local_apis: Mapping[str, LocalApi] | None = None,
        on_event: Callable[[str], None],
    ) -> None:
        self._activity = activity
        self._faults = faults
        self._instrumentation = instrumentation
        self._local_apis = dict(local_apis or {})
        self._on_event = on_event
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._authorize: Authorize | None = None

    def authorize_with(self, authorize: Authorize | None) -> None:
        """Check every request with ``authorize`` from now on (None: nothing is checked)."""
        self._authorize = authorize

    def serve(self, service: str, api: LocalApi) -> None:
        """Answer ``service`` (``cloudformation``) with ``api`` from now on."""
        self._local_apis[service] = api

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = read_body(environ)
        operation = identify(environ, body)
        try:
            with self._instrumentation.request(operation):
                denied = self._authorize(operation, environ, body) if self._authorize else None
                injected = None if denied is not None else self._faults.apply(operation)
                if injected is not None and injected.after_request:
                    self._perform(operation, environ, body)
                if denied is not None:
                    response = error_response(operation, denied)
                elif injected is not None:
                    response = error_response(operation, injected.error)
                else:
                    response = self._perform(operation, environ, body)
                self._instrumentation.record(operation, body, response, injected)
        finally:
            if operation.action in _READ_ONLY:
                self._activity.notify()
            else:
                self._activity.changed()
        start_response(
            response.status, [*response.headers, ("Content-Length", str(len(response.body)))]
        )
        return [response.body]

    def _perform(self, operation: Operation, environ: Environ, body: bytes) -> Response:
        local = self._local_apis.get(operation.service)
        try:
            if local is not None and operation.name in local.OPERATIONS:
                return local.handle(operation, environ, body)
            if local is not None and local.EXCLUSIVE:
                raise not_emulated(operation, local.OPERATIONS)
        except ApiError as error:
            return error_response(operation, error)
        except Exception as error:
            # Answered here: werkzeug takes an escaping ConnectionError (e.g. a worker's
            # BrokenPipeError) for a dropped client and would leave the caller waiting.
            self._on_event(f"{operation.action} failed inside the emulator: {error!r}")
            return error_response(
                operation,
                ApiError(
                    "ServiceException", f"emulator error: {error!r}", "500 Internal Server Error"
                ),
            )
        with serialized():
            # Consumed inside the lock: the body iterator may still touch moto's state.
            return _call(self._moto, environ)


def _call(app: Callable[[Environ, StartResponse], Iterable[bytes]], environ: Environ) -> Response:
    """Run a WSGI app to completion: its status, headers and body."""
    answer: dict[str, Any] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        answer["status"], answer["headers"] = status, headers
        return lambda data: None

    result = app(environ, start_response)
    try:
        chunks = list(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    headers = [
        (name, value) for name, value in answer["headers"] if name.lower() != "content-length"
    ]
    return Response(answer["status"], headers, b"".join(chunks))


class _RequestHandler(MotoRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Request lines would drown the function logs; errors still go to log()."""


class _Server(ThreadedWSGIServer):
    # Non-daemon request threads: server_close() joins every one, so none outlives the emulator.
    daemon_threads = False
    block_on_close = True
    on_event: Callable[[str], None] = staticmethod(lambda message: None)

    def log(self, type: str, message: str, *args: Any) -> None:
        self.on_event(f"server {type}: {message % args if args else message}")


class PortUnavailableError(OSError):
    """The loopback port asked for is taken or is not a port; the message says what to do."""

    def __init__(self, port: int, reason: str, advice: str) -> None:
        super().__init__(f"port {port} {reason}: {advice}")
        self.port = port
        self.reason = reason
        self.advice = advice


class EmulatorServer:
    """Serves an app in a thread of this process, on 127.0.0.1 only."""

    def __init__(
        self,
        app: Callable[[Environ, StartResponse], Iterable[bytes]],
        *,
        on_event: Callable[[str], None],
        port: int = 0,
    ) -> None:
        self._app = app
        self._on_event = on_event
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator's server is not started")
        return int(self._server.port)

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        """Listen; PortUnavailableError if the port is taken."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((LOOPBACK, self._requested_port))
            except OSError as error:
                raise PortUnavailableError(
                    self._requested_port,
                    f"on {LOOPBACK} is not free ({error.strerror})",
                    "stop what listens there (another emulator?), or pass --port N (0: a free one)",
                ) from error
            listener.listen(128)
            # werkzeug takes a bound socket by descriptor, so a busy port is a clean OSError here
            # instead of werkzeug's sys.exit.
            self._server = _Server(
                LOOPBACK, 0, self._app, handler=_RequestHandler, fd=listener.fileno()
            )
        finally:
            listener.close()
        self._server.on_event = self._on_event
        self._thread = threading.Thread(
            # A short poll interval: stop() waits for the accept loop to notice it.
            target=functools.partial(self._server.serve_forever, poll_interval=0.05),
            name="emulator-http",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting and join every request thread; safe before start and to repeat."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None
