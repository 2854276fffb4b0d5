"""Request counting and seeded fault injection at the emulator's HTTP endpoint.

``Instrumentation`` is a WSGI middleware in front of the emulator's server, so it sees every
request that reaches the endpoint: the functions' SDK calls, the event-source pollers'
ReceiveMessage and DeleteMessageBatch (which AWS bills to the account), and test clients. The
benchmark reads its counts; the reliability suite makes a share of one operation fail with it.
"""

from __future__ import annotations

import base64
import json
import math
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

from audit_stack.local.server import read_body

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

# SNS and SQS bill each 64 KB chunk of a request's payload as one request.
BILLING_CHUNK_BYTES = 64 * 1024
# DynamoDB: one write request unit per started 1 KB of item size.
WRITE_UNIT_BYTES = 1024
_CHUNK_BILLED_SERVICES = frozenset({"sns", "sqs"})
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/(?P<service>[^/]+)/")
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/[^/]+/invocations/?$")
_XML_ERROR_CODE = re.compile(rb"<Code>([^<]+)</Code>")
_XML_MESSAGE = re.compile(rb"<Message>")


@dataclass
class OperationCount:
    """What one AWS operation (``sqs:ReceiveMessage``) was asked to do, summed over requests."""

    requests: int = 0
    billed_requests: int = 0
    """requests in 64 KB chunks (larger of request and response payload), as SNS and SQS bill"""
    errors: Counter[str] = field(default_factory=Counter)
    """error code -> answers with that error (injected ones included)"""
    injected: Counter[str] = field(default_factory=Counter)
    """error code -> answers the fault injector gave"""
    messages_received: int = 0
    """sqs:ReceiveMessage only: messages returned"""
    empty_receives: int = 0
    """sqs:ReceiveMessage only: answers without a message"""
    item_write_units: int = 0
    """dynamodb:PutItem only: write request units of the items written or condition-checked,
    base table only (each global secondary index the item lands in costs as much again)"""
    item_bytes: int = 0
    """dynamodb:PutItem only: item sizes as DynamoDB computes them"""

    def copy(self) -> OperationCount:
        return replace(self, errors=Counter(self.errors), injected=Counter(self.injected))


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
        if self.error_code.startswith("Internal"):
            return "500 Internal Server Error"
        return "400 Bad Request"

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
        self.operation = _normalise_operation(operation)
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


class Instrumentation:
    """Counts every request by operation and injects faults; wrap the emulator's WSGI app.

    :param notify: called after every request, so waiters that watch the counts wake up.
    """

    def __init__(self, notify: Callable[[], None] | None = None) -> None:
        self._notify = notify or (lambda: None)
        self._lock = threading.Lock()
        self._counts: dict[str, OperationCount] = {}
        self._in_progress: Counter[str] = Counter()
        self._injectors: list[FaultInjector] = []

    def wrap(self, app: WsgiApp) -> WsgiApp:
        """The middleware around ``app``."""

        def middleware(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            return self._handle(app, environ, start_response)

        return middleware

    # -- what callers read -----------------------------------------------------------------------

    def counts(self) -> dict[str, OperationCount]:
        """A copy of the counts so far, by operation (``service:Operation``)."""
        with self._lock:
            return {operation: count.copy() for operation, count in self._counts.items()}

    def count(self, operation: str) -> int:
        """Requests of one operation so far."""
        with self._lock:
            found = self._counts.get(_normalise_operation(operation))
            return found.requests if found else 0

    def in_progress(self, operation: str) -> int:
        """Requests of one operation received and not yet answered."""
        with self._lock:
            return self._in_progress[_normalise_operation(operation)]

    def reset_counts(self) -> None:
        """Start counting from zero (requests in progress are still counted when they end)."""
        with self._lock:
            self._counts = {}

    # -- faults ----------------------------------------------------------------------------------

    @contextmanager
    def inject_faults(
        self,
        operation: str,
        *,
        rate: float,
        faults: Sequence[InjectedFault] = DYNAMODB_WRITE_FAULTS,
        seed: int = 0,
    ) -> Iterator[FaultInjector]:
        """Fail ``rate`` of ``operation``'s requests (seeded) with one of ``faults`` for the block.

        Off unless asked for: outside such a block every request goes through untouched.
        """
        injector = FaultInjector(operation, rate=rate, faults=faults, seed=seed)
        with self._lock:
            self._injectors.append(injector)
        try:
            yield injector
        finally:
            with self._lock:
                self._injectors.remove(injector)

    def _injector_for(self, operation: str | None) -> FaultInjector | None:
        with self._lock:
            return next((found for found in self._injectors if found.operation == operation), None)

    # -- WSGI ------------------------------------------------------------------------------------

    def _handle(
        self, app: WsgiApp, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        body = read_body(environ)
        # Unsigned requests are the emulator's own (moto's reset endpoint), never an AWS call.
        operation = _operation(environ, body) or "emulator:unsigned"
        with self._lock:
            self._in_progress[operation] += 1
        try:
            injector = self._injector_for(operation)
            fault = injector.decide() if injector is not None else None
            if fault is not None and fault.after_request:
                _call(app, environ)
            if fault is not None:
                status, headers, chunks = _error_response(environ, fault)
            else:
                status, headers, chunks = _call(app, environ)
            response = b"".join(chunks)
            self._record(operation, environ, body, (status, headers, response), fault)
        finally:
            with self._lock:
                self._in_progress[operation] -= 1
            self._notify()
        start_response(status, headers)
        return [response]

    def _record(
        self,
        operation: str,
        environ: Environ,
        body: bytes,
        answer: tuple[str, list[tuple[str, str]], bytes],
        fault: InjectedFault | None,
    ) -> None:
        status, headers, response = answer
        service = operation.split(":", 1)[0]
        failed = not status.startswith("2")
        error_code = _error_code(environ, headers, response) if failed else None
        received = (
            _messages_received(response)
            if operation == "sqs:ReceiveMessage" and not failed
            else None
        )
        # DynamoDB bills a write that reached the table even when its condition failed.
        stored_or_checked = (
            not failed
            or error_code == "ConditionalCheckFailedException"
            or (fault is not None and fault.after_request)
        )
        item_bytes = (
            _put_item_size(body) if operation == "dynamodb:PutItem" and stored_or_checked else None
        )
        with self._lock:
            count = self._counts.setdefault(operation, OperationCount())
            count.requests += 1
            payload = max(len(body), len(response))
            count.billed_requests += (
                max(1, math.ceil(payload / BILLING_CHUNK_BYTES))
                if service in _CHUNK_BILLED_SERVICES
                else 1
            )
            if failed:
                count.errors[error_code or status.split(" ", 1)[0]] += 1
            if fault is not None:
                count.injected[fault.label] += 1
            if received is not None:
                count.messages_received += received
                count.empty_receives += received == 0
            if item_bytes is not None:
                count.item_bytes += item_bytes
                count.item_write_units += max(1, math.ceil(item_bytes / WRITE_UNIT_BYTES))


def _call(app: WsgiApp, environ: Environ) -> tuple[str, list[tuple[str, str]], list[bytes]]:
    """Run the wrapped app to completion: its status, headers and body."""
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
    return answer["status"], answer["headers"], chunks


def _operation(environ: Environ, body: bytes) -> str | None:
    """``service:Operation`` in the IAM action style, from the JSON target or the query Action."""
    if environ.get("REQUEST_METHOD") == "POST" and _INVOKE_PATH.match(environ.get("PATH_INFO", "")):
        return "lambda:Invoke"
    scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope is None:
        return None
    service = scope.group("service")
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        action = parse_qs(body.decode("utf-8", errors="replace")).get("Action")
        if action:
            return f"{service}:{action[0]}"
    return f"{service}:*"


def _normalise_operation(operation: str) -> str:
    service, _, name = operation.partition(":")
    if not service or not name:
        raise ValueError(
            f"operation {operation!r}: expected service:Operation, e.g. dynamodb:PutItem"
        )
    return f"{service.lower()}:{name}"


def _error_code(environ: Environ, headers: list[tuple[str, str]], response: bytes) -> str | None:
    """The AWS error code of an error answer, in the request's protocol."""
    for name, value in headers:
        # REST protocols (Lambda) name the error in a header.
        if name.lower() == "x-amzn-errortype":
            return value.split(":", 1)[0]
    if environ.get("HTTP_X_AMZ_TARGET") or response.startswith(b"{"):
        try:
            document = json.loads(response)
        except ValueError:
            return None
        if isinstance(document, dict):
            code = document.get("__type") or document.get("code") or document.get("Code")
            if isinstance(code, str):
                return code.rsplit("#", 1)[-1]
        return None
    match = _XML_ERROR_CODE.search(response)
    return match.group(1).decode("utf-8", errors="replace") if match else None


def _messages_received(response: bytes) -> int:
    """How many messages a ReceiveMessage answer carries (JSON protocol, or XML for old SDKs)."""
    if response.startswith(b"{"):
        try:
            document = json.loads(response)
        except ValueError:
            return 0
        messages = document.get("Messages", []) if isinstance(document, dict) else []
        return len(messages) if isinstance(messages, list) else 0
    return len(_XML_MESSAGE.findall(response))


def _error_response(
    environ: Environ, fault: InjectedFault
) -> tuple[str, list[tuple[str, str]], list[bytes]]:
    """An error answer in the protocol of the request (JSON with a target, query/XML, REST)."""
    message = "Injected by LocalAuditPipeline.instrumentation"
    target = environ.get("HTTP_X_AMZ_TARGET")
    request_id = [("x-amzn-RequestId", str(uuid.uuid4()))]
    if target:
        document = {"__type": f"{target.split('.')[0]}#{fault.error_code}", "message": message}
        content_type = environ.get("CONTENT_TYPE") or "application/x-amz-json-1.0"
        return (
            fault.status,
            [("Content-Type", content_type), *request_id],
            [json.dumps(document).encode()],
        )
    if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{fault.error_code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id[0][1]}</RequestId></ErrorResponse>"
        )
        return fault.status, [("Content-Type", "text/xml"), *request_id], [xml.encode()]
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-ErrorType", fault.error_code),
        *request_id,
    ]
    return fault.status, headers, [json.dumps({"message": message}).encode()]


def _put_item_size(body: bytes) -> int | None:
    """The size DynamoDB bills for a PutItem request's item, or None if the body has no item."""
    try:
        item = json.loads(body).get("Item")
    except (ValueError, AttributeError):
        return None
    if not isinstance(item, dict):
        return None
    return sum(len(name.encode()) + _attribute_size(value) for name, value in item.items())


def _attribute_size(value: dict[str, Any]) -> int:
    """An attribute value's size by DynamoDB's documented rules (name sizes added by callers)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        return _number_size(str(data))
    if kind == "B":
        return len(base64.b64decode(data))
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "SS":
        return sum(len(str(item).encode()) for item in data)
    if kind == "NS":
        return sum(_number_size(str(item)) for item in data)
    if kind == "BS":
        return sum(len(base64.b64decode(item)) for item in data)
    if kind == "L":
        # 3 bytes for the list, 1 byte of overhead per element.
        return 3 + sum(1 + _attribute_size(item) for item in data)
    if kind == "M":
        return 3 + sum(
            1 + len(name.encode()) + _attribute_size(item) for name, item in data.items()
        )
    raise ValueError(f"unknown DynamoDB attribute type {kind}")


def _number_size(text: str) -> int:
    """About 1 byte per two significant digits, plus 1 byte."""
    try:
        digits = Decimal(text).as_tuple().digits
    except InvalidOperation:
        return len(text)
    significant = "".join(map(str, digits)).strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1
