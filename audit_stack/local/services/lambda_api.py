"""Lambda's Invoke API, answered by the emulator's own function workers, with Lambda's payload
limits (6 MB synchronous, 1 MB asynchronous) and error answers."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs

from audit_stack.local.http.errors import ApiError, Response
from audit_stack.local.http.operations import Environ, Operation
from audit_stack.local.runtime.pool import (
    ASYNC_PAYLOAD_LIMIT_BYTES,
    SYNC_PAYLOAD_LIMIT_BYTES,
    TooManyRequestsError,
)
from audit_stack.local.runtime.registry import (
    FunctionNotFoundError,
    FunctionRegistry,
    InvalidRequestContentError,
)

_LOG_TAIL_BYTES = 4096


class LambdaApi:
    """Invoke (RequestResponse, Event, DryRun) of the deployed functions."""

    OPERATIONS = frozenset({"Invoke"})
    # moto's Lambda never saw the functions: its answers (GetFunction...) would be wrong.
    EXCLUSIVE = True

    def __init__(self, functions: FunctionRegistry, on_event: Callable[[str], None]) -> None:
        self._functions = functions
        self._on_event = on_event
        self._async_invocations: list[threading.Thread] = []
        self._stopping = threading.Event()

    def handle(self, operation: Operation, environ: Environ, body: bytes) -> Response:
        name = operation.function_name or ""
        qualifier = parse_qs(environ.get("QUERY_STRING", "")).get("Qualifier", ["$LATEST"])[0]
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        registry = self._functions
        limit = (
            ASYNC_PAYLOAD_LIMIT_BYTES if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT_BYTES
        )
        try:
            if qualifier != "$LATEST":
                raise FunctionNotFoundError(name)
            registry.find(name)
            if len(body) > limit:
                raise ApiError(
                    "RequestEntityTooLargeException",
                    f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
                    "413 Request Entity Too Large",
                )
            if invocation_type == "DryRun":
                return Response("204 No Content", [], b"")
            if invocation_type == "Event":
                thread = registry.invoke_async(name, body, on_error=self._async_failed)
                self._async_invocations = [
                    *(alive for alive in self._async_invocations if alive.is_alive()),
                    thread,
                ]
                return Response("202 Accepted", [("x-amzn-RequestId", str(uuid.uuid4()))], b"")
            result = registry.invoke(name, body, trigger="api")
        except FunctionNotFoundError:
            raise ApiError(
                "ResourceNotFoundException", f"Function not found: {name}", "404 Not Found"
            ) from None
        except TooManyRequestsError as error:
            raise ApiError(
                "TooManyRequestsException", str(error), "429 Too Many Requests"
            ) from None
        except (InvalidRequestContentError, ValueError):
            raise ApiError(
                "InvalidRequestContentException", "Could not parse request body into json"
            ) from None
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
        return Response("200 OK", headers, result.payload)

    def stop(self) -> None:
        """Wait for accepted asynchronous invocations (their workers are being killed)."""
        self._stopping.set()
        for thread in self._async_invocations:
            thread.join()

    def _async_failed(self, error: BaseException) -> None:
        if not self._stopping.is_set():
            self._on_event(f"asynchronous invocation failed: {error!r}")
