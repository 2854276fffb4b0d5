"""The emulator's HTTP endpoint on loopback: moto's WSGI app behind a middleware for what it lacks.

The middleware answers Lambda Invoke with the emulator's own workers, SQS message move tasks and
CloudFormation's DescribeStacks / GetTemplate / ListStackResources itself, injects faults that
tests ask for, serialises every request that reaches moto, and tells waiters (pollers,
run_until_idle) that something changed.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import ThreadedWSGIServer

from audit_stack.local.activity import Activity
from audit_stack.local.cloudformation import StackApi
from audit_stack.local.functions import (
    FunctionNotFoundError,
    FunctionRegistry,
    InvalidRequestContentError,
    TooManyRequestsError,
)
from audit_stack.local.message_moves import MessageMoveTasks, SqsApiError
from audit_stack.local.moto_state import serialized

LOOPBACK = "127.0.0.1"
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/(?P<service>[^/]+)/")
# Requests that cannot make a message receivable: they wake waiters without counting as a change.
_READ_ONLY = frozenset({"sqs:ReceiveMessage", "sqs:GetQueueAttributes", "sqs:ListQueues"})
_LOG_TAIL_BYTES = 4096

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


@dataclass
class Fault:
    """An injected failure of one AWS operation, e.g. ``dynamodb:PutItem``."""

    operation: str
    error_code: str | None
    message: str
    latency: float
    released: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class _Response:
    status: str
    headers: list[tuple[str, str]]
    body: bytes


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


class EmulatorServer:
    """moto's server plus the middleware, in a thread of this process, on 127.0.0.1 only."""

    def __init__(
        self,
        *,
        activity: Activity,
        on_event: Callable[[str], None],
        port: int = 0,
    ) -> None:
        self._activity = activity
        self._on_event = on_event
        self._requested_port = port
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._faults: list[Fault] = []
        self._faults_lock = threading.Lock()
        self._async_invocations: list[threading.Thread] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.functions: FunctionRegistry | None = None
        self.move_tasks: MessageMoveTasks | None = None
        self.stack_api: StackApi | None = None
        # What the HTTP server calls: this object, or a middleware around it (set before start).
        self.wsgi_app: Callable[[Environ, StartResponse], Iterable[bytes]] = self

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return int(self._server.port)

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((LOOPBACK, self._requested_port))
            listener.listen(128)
            # werkzeug takes a bound socket by descriptor, so a busy port is a clean OSError here
            # instead of werkzeug's sys.exit.
            self._server = _Server(
                LOOPBACK, 0, self.wsgi_app, handler=_RequestHandler, fd=listener.fileno()
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
        """Stop accepting, release held requests, and join every request thread."""
        self._stopping.set()
        with self._faults_lock:
            for fault in self._faults:
                fault.released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        for thread in self._async_invocations:
            thread.join()

    # -- faults ----------------------------------------------------------------------------------

    @contextmanager
    def fault(
        self, operation: str, *, error_code: str | None, message: str, latency: float
    ) -> Iterator[Fault]:
        service, _, name = operation.partition(":")
        if not service or not name:
            raise ValueError(
                f"operation {operation!r}: expected service:Operation, e.g. dynamodb:PutItem"
            )
        fault = Fault(f"{service.lower()}:{name}", error_code, message, latency)
        with self._faults_lock:
            self._faults.append(fault)
        try:
            yield fault
        finally:
            with self._faults_lock:
                self._faults.remove(fault)
            # Requests still held by the latency go on at once, as a network recovering would.
            fault.released.set()

    def _fault_for(self, operation: str | None) -> Fault | None:
        with self._faults_lock:
            return next((fault for fault in self._faults if fault.operation == operation), None)

    # -- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = read_body(environ)
        operation = _operation(environ, body)
        try:
            fault = self._fault_for(operation)
            if fault is not None:
                # Waits for the latency, or until the fault is lifted or the emulator stops.
                fault.released.wait(fault.latency)
                if fault.error_code is not None and not fault.released.is_set():
                    return _answer(start_response, _error_response(environ, fault))
            try:
                response = self._route(environ, body, operation)
            except Exception as error:
                # Answered here: werkzeug takes an escaping ConnectionError (e.g. a worker's
                # BrokenPipeError) for a dropped client and would leave the caller waiting.
                self._on_event(f"{operation} failed inside the emulator: {error!r}")
                response = _Response(
                    "500 Internal Server Error",
                    [
                        ("Content-Type", "application/json"),
                        ("x-amzn-ErrorType", "ServiceException"),
                    ],
                    json.dumps({"message": f"emulator error: {error!r}"}).encode(),
                )
            if response is not None:
                return _answer(start_response, response)
            with serialized():
                # Consumed inside the lock: the body iterator may still touch moto's state.
                return list(self._moto(environ, start_response))
        finally:
            if operation in _READ_ONLY:
                self._activity.notify()
            else:
                self._activity.changed()

    def _route(self, environ: Environ, body: bytes, operation: str | None) -> _Response | None:
        if operation == "lambda:Invoke":
            return self._invoke(environ, body)
        if operation is not None and operation.startswith("sqs:") and self.move_tasks is not None:
            name = operation.split(":", 1)[1]
            if name in MessageMoveTasks.OPERATIONS:
                return self._message_move(name, body)
        if operation is not None and operation.startswith("cloudformation:") and self.stack_api:
            answer = self.stack_api.handle(
                operation.split(":", 1)[1], body, environ.get("HTTP_AUTHORIZATION", "")
            )
            return _Response(*answer)
        return None

    def _message_move(self, name: str, body: bytes) -> _Response:
        assert self.move_tasks is not None
        headers = [("Content-Type", "application/x-amz-json-1.0")]
        try:
            answer = self.move_tasks.handle(name, json.loads(body or b"{}"))
        except SqsApiError as error:
            document = {"__type": f"com.amazonaws.sqs#{error.code}", "message": error.message}
            return _Response("400 Bad Request", headers, json.dumps(document).encode())
        return _Response("200 OK", headers, json.dumps(answer).encode())

    def _invoke(self, environ: Environ, body: bytes) -> _Response:
        match = _INVOKE_PATH.match(environ.get("PATH_INFO", ""))
        assert match is not None
        name = unquote(match.group("name"))
        qualifier = parse_qs(environ.get("QUERY_STRING", "")).get("Qualifier", ["$LATEST"])[0]
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        registry = self.functions
        try:
            if registry is None or qualifier != "$LATEST":
                raise FunctionNotFoundError(name)
            registry.find(name)
            if invocation_type == "DryRun":
                return _Response("204 No Content", [], b"")
            if invocation_type == "Event":
                thread = registry.invoke_async(name, body, on_error=self._async_failed)
                self._async_invocations = [
                    *(alive for alive in self._async_invocations if alive.is_alive()),
                    thread,
                ]
                return _Response("202 Accepted", [("x-amzn-RequestId", str(uuid.uuid4()))], b"")
            result = registry.invoke(name, body, trigger="api")
        except FunctionNotFoundError:
            return _lambda_error(
                "404 Not Found", "ResourceNotFoundException", f"Function not found: {name}"
            )
        except TooManyRequestsError as error:
            return _lambda_error("429 Too Many Requests", "TooManyRequestsException", str(error))
        except (InvalidRequestContentError, ValueError):
            return _lambda_error(
                "400 Bad Request",
                "InvalidRequestContentException",
                "Could not parse request body into json",
            )
        headers = [
            ("Content-Type", "application/json"),
            ("X-Amz-Executed-Version", "$LATEST"),
            ("x-amzn-RequestId", result.request_id),
        ]
        if result.function_error is not None:
            headers.append(("X-Amz-Function-Error", result.function_error))
        if environ.get("HTTP_X_AMZ_LOG_TYPE") == "Tail":
            tail = "\n".join(result.logs).encode()[-_LOG_TAIL_BYTES:]
            headers.append(("X-Amz-Log-Result", base64.b64encode(tail).decode()))
        return _Response("200 OK", headers, result.payload)

    def _async_failed(self, error: BaseException) -> None:
        if not self._stopping.is_set():
            self._on_event(f"asynchronous invocation failed: {error!r}")


def read_body(environ: Environ) -> bytes:
    """The request body, buffered so that moto can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _operation(environ: Environ, body: bytes) -> str | None:
    """``service:Operation`` of a request, in the IAM action style (``sqs:SendMessage``)."""
    if environ.get("REQUEST_METHOD") == "POST" and _INVOKE_PATH.match(environ.get("PATH_INFO", "")):
        return "lambda:Invoke"
    scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = scope.group("service") if scope else None
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        name = target.rsplit(".", 1)[-1]
    else:
        content_type = environ.get("CONTENT_TYPE", "")
        if "x-www-form-urlencoded" not in content_type:
            return f"{service}:*" if service else None
        action = parse_qs(body.decode("utf-8", errors="replace")).get("Action")
        if not action:
            return None
        name = action[0]
    return f"{service}:{name}" if service else None


def _answer(start_response: StartResponse, response: _Response) -> list[bytes]:
    start_response(
        response.status, [*response.headers, ("Content-Length", str(len(response.body)))]
    )
    return [response.body]


def _lambda_error(status: str, error_type: str, message: str) -> _Response:
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)]
    return _Response(status, headers, json.dumps({"Type": "User", "message": message}).encode())


def _error_response(environ: Environ, fault: Fault) -> _Response:
    """An error answer in the protocol of the request (JSON, query/XML or REST)."""
    code = fault.error_code or "InternalFailure"
    status = "500 Internal Server Error" if code.startswith("Internal") else "400 Bad Request"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        content_type = environ.get("CONTENT_TYPE") or "application/x-amz-json-1.0"
        document = {"__type": f"{target.split('.')[0]}#{code}", "message": fault.message}
        return _Response(status, [("Content-Type", content_type)], json.dumps(document).encode())
    if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{fault.message}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        return _Response(status, [("Content-Type", "text/xml")], xml.encode())
    return _lambda_error(status, code, fault.message)
