"""Request metering at the emulator's HTTP endpoint: counts, errors, billed units, per operation.

The endpoint reports every request here: the functions' SDK calls, the event-source pollers'
ReceiveMessage and DeleteMessageBatch (which AWS bills to the account), and test clients. The
benchmark reads the counts; the reliability suite injects seeded faults through ``inject_faults``.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from audit_stack.local.control.partiql_inserts import DUPLICATE_ITEM, parse_insert
from audit_stack.local.http.errors import Injected, Response
from audit_stack.local.http.operations import Operation, normalise
from audit_stack.local.instruments.faults import (
    DYNAMODB_WRITE_FAULTS,
    FaultInjector,
    Faults,
    InjectedFault,
)

# SNS and SQS bill each 64 KB chunk of a request's payload as one request.
BILLING_CHUNK_BYTES = 64 * 1024
# DynamoDB: one write request unit per started 1 KB of item size.
WRITE_UNIT_BYTES = 1024
_CHUNK_BILLED_SERVICES = frozenset({"sns", "sqs"})
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
    """dynamodb:PutItem, and the PartiQL INSERTs of dynamodb:BatchExecuteStatement: write request
    units of the items written or condition-checked, base table only (each global secondary
    index the item lands in costs as much again)"""
    item_bytes: int = 0
    """the same writes' item sizes as DynamoDB computes them"""
    statement_errors: Counter[str] = field(default_factory=Counter)
    """dynamodb:BatchExecuteStatement only: statement error code (``DuplicateItem``: an INSERT
    whose key exists) -> statements answered with it, in answers that succeeded as a whole"""

    def copy(self) -> OperationCount:
        return replace(
            self,
            errors=Counter(self.errors),
            injected=Counter(self.injected),
            statement_errors=Counter(self.statement_errors),
        )


class Instrumentation:
    """Counts every request by operation; ``inject_faults`` fails a seeded share of one.

    :param faults: the endpoint's fault mechanism, which ``inject_faults`` adds to.
    :param notify: called after every request, so waiters that watch the counts wake up.
    """

    def __init__(self, faults: Faults, notify: Callable[[], None] | None = None) -> None:
        self._faults = faults
        self._notify = notify or (lambda: None)
        self._lock = threading.Lock()
        self._counts: dict[str, OperationCount] = {}
        self._in_progress: Counter[str] = Counter()

    # -- what callers read -----------------------------------------------------------------------

    def counts(self) -> dict[str, OperationCount]:
        """A copy of the counts so far, by operation (``service:Operation``)."""
        with self._lock:
            return {operation: count.copy() for operation, count in self._counts.items()}

    def count(self, operation: str) -> int:
        """Requests of one operation so far."""
        with self._lock:
            found = self._counts.get(normalise(operation))
            return found.requests if found else 0

    def in_progress(self, operation: str) -> int:
        """Requests of one operation received and not yet answered."""
        with self._lock:
            return self._in_progress[normalise(operation)]

    def reset_counts(self) -> None:
        """Start counting from zero (requests in progress are still counted when they end)."""
        with self._lock:
            self._counts = {}

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
        with self._faults.seeded(operation, rate=rate, faults=faults, seed=seed) as injector:
            yield injector

    # -- what the endpoint reports ---------------------------------------------------------------

    @contextmanager
    def request(self, operation: Operation) -> Iterator[None]:
        """Counts the request as in progress for the block, and wakes waiters after it."""
        with self._lock:
            self._in_progress[operation.action] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_progress[operation.action] -= 1
            self._notify()

    def record(
        self,
        operation: Operation,
        body: bytes,
        answer: Response,
        injected: Injected | None,
    ) -> None:
        """Count one answered request."""
        status, headers, response = answer.status, answer.headers, answer.body
        action = operation.action
        failed = not status.startswith("2")
        error_code = _error_code(operation, headers, response) if failed else None
        received = (
            _messages_received(response) if action == "sqs:ReceiveMessage" and not failed else None
        )
        # DynamoDB bills a write that reached the table even when its condition failed.
        stored_or_checked = (
            not failed
            or error_code == "ConditionalCheckFailedException"
            or (injected is not None and injected.after_request)
        )
        statements = (
            statement_outcomes(body, response)
            if action == "dynamodb:BatchExecuteStatement" and not failed
            else StatementOutcomes()
        )
        item_sizes = (
            [size for size in [put_item_size(body)] if size is not None]
            if action == "dynamodb:PutItem" and stored_or_checked
            else statements.insert_sizes
        )
        with self._lock:
            count = self._counts.setdefault(action, OperationCount())
            count.requests += 1
            payload = max(len(body), len(response))
            count.billed_requests += (
                max(1, math.ceil(payload / BILLING_CHUNK_BYTES))
                if operation.service in _CHUNK_BILLED_SERVICES
                else 1
            )
            if failed:
                count.errors[error_code or status.split(" ", 1)[0]] += 1
            if injected is not None:
                count.injected[injected.label] += 1
            if received is not None:
                count.messages_received += received
                count.empty_receives += received == 0
            count.statement_errors.update(statements.errors)
            for item_bytes in item_sizes:
                count.item_bytes += item_bytes
                count.item_write_units += max(1, math.ceil(item_bytes / WRITE_UNIT_BYTES))


def _error_code(
    operation: Operation, headers: list[tuple[str, str]], response: bytes
) -> str | None:
    """The AWS error code of an error answer, in the request's protocol."""
    for name, value in headers:
        # REST protocols (Lambda) name the error in a header.
        if name.lower() == "x-amzn-errortype":
            return value.split(":", 1)[0]
    if operation.protocol == "json" or response.startswith(b"{"):
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


def put_item_size(body: bytes) -> int | None:
    """The size DynamoDB bills for a PutItem request's item, or None if the body has no item."""
    try:
        item = json.loads(body).get("Item")
    except (ValueError, AttributeError):
        return None
    if not isinstance(item, dict):
        return None
    return _item_size(item)


@dataclass(frozen=True)
class StatementOutcomes:
    """What the statements of one BatchExecuteStatement answer did."""

    insert_sizes: list[int] = field(default_factory=list)
    """billed sizes of the PartiQL INSERTs that stored their item or found its key taken
    (DuplicateItem: a failed condition, billed as PutItem's is)"""
    errors: Counter[str] = field(default_factory=Counter)
    """statement error code -> statements answered with it"""


def statement_outcomes(body: bytes, response: bytes) -> StatementOutcomes:
    """The outcomes of a BatchExecuteStatement request's statements, from its answer."""
    try:
        statements = json.loads(body).get("Statements", [])
        answers = json.loads(response).get("Responses", [])
    except (ValueError, AttributeError):
        return StatementOutcomes()
    found = StatementOutcomes()
    for statement, answer in zip(statements, answers, strict=False):
        error = answer.get("Error")
        if error is not None:
            found.errors[str(error.get("Code"))] += 1
        insert = parse_insert(statement.get("Statement", ""), statement.get("Parameters", []))
        if insert is not None and (error is None or error.get("Code") == DUPLICATE_ITEM):
            found.insert_sizes.append(_item_size(insert[1]))
    return found


def _item_size(item: dict[str, Any]) -> int:
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
