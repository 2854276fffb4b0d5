"""SQS message move tasks (DLQ redrive), which moto lacks: Start-, List- and CancelMessageMoveTask.

With AWS's semantics: the source must be a dead-letter queue of other queues; without a
DestinationArn its messages go back to the queue whose RedrivePolicy targets it; each message is
sent (body and attributes) and then deleted from the source, once; one running task per source.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audit_stack.local.control.activity import Activity
from audit_stack.local.http.errors import ApiError, Response
from audit_stack.local.http.operations import Environ, Operation

_MAX_RATE = 500  # AWS's upper limit for MaxNumberOfMessagesPerSecond
# A message being moved stays invisible in the source this long; if sending fails it comes back.
_MOVE_VISIBILITY_SECONDS = 30


@dataclass
class MoveTask:
    """One message move task and its progress."""

    handle: str
    source_arn: str
    destination_arn: str | None
    max_per_second: int | None
    started_ms: int
    to_move: int = 0
    moved: int = 0
    status: str = "RUNNING"
    failure_reason: str | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Status": self.status,
            "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.status == "RUNNING":
            entry["TaskHandle"] = self.handle
        if self.destination_arn is not None:
            entry["DestinationArn"] = self.destination_arn
        if self.max_per_second is not None:
            entry["MaxNumberOfMessagesPerSecond"] = self.max_per_second
        if self.failure_reason is not None:
            entry["FailureReason"] = self.failure_reason
        return entry


class MessageMoveTasks:
    """Runs move tasks in background threads through the emulator's own SQS API."""

    OPERATIONS = frozenset(
        {"StartMessageMoveTask", "ListMessageMoveTasks", "CancelMessageMoveTask"}
    )
    # The rest of SQS is moto's.
    EXCLUSIVE = False

    def __init__(
        self,
        sqs: Callable[[], Any],
        *,
        activity: Activity,
        region: str,
        account_id: str,
        on_event: Callable[[str], None],
    ) -> None:
        self._sqs = sqs
        self._activity = activity
        self._region = region
        self._account_id = account_id
        self._on_event = on_event
        self._lock = threading.Lock()
        self._tasks: list[MoveTask] = []
        self._threads: list[threading.Thread] = []

    def handle(self, operation: Operation, environ: Environ, body: bytes) -> Response:
        """Answer one API call of the SQS JSON protocol."""
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise ApiError("SerializationException", "the request body is not JSON") from None
        answer = self.answer(operation.name, request)
        headers = [("Content-Type", "application/x-amz-json-1.0")]
        return Response("200 OK", headers, json.dumps(answer).encode())

    def answer(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """The answer document to one call; ApiError for AWS's error answers."""
        if operation == "StartMessageMoveTask":
            return self._start(request)
        if operation == "ListMessageMoveTasks":
            return self._list(request)
        return self._cancel(request)

    @property
    def running(self) -> list[MoveTask]:
        with self._lock:
            return [task for task in self._tasks if not task.finished.is_set()]

    def task(self, handle: str) -> MoveTask:
        with self._lock:
            for task in self._tasks:
                if task.handle == handle:
                    return task
        raise ApiError("ResourceNotFoundException", f"Task {handle} does not exist.")

    def stop(self) -> None:
        """Cancel every running task and wait for its thread."""
        for task in self.running:
            task.cancel_requested.set()
        for thread in list(self._threads):
            thread.join()

    # -- the three operations ------------------------------------------------------------------

    def _start(self, request: dict[str, Any]) -> dict[str, Any]:
        source_arn = _required(request, "SourceArn")
        source_url = self._queue_url(source_arn)
        sources = self._queues_redriving_to(source_arn)
        if not sources:
            raise ApiError(
                "UnsupportedOperation",
                "Source queue must be configured as a Dead Letter Queue of other queues.",
            )
        destination_arn = request.get("DestinationArn")
        if destination_arn is not None:
            destination_url = self._queue_url(destination_arn)
        elif len(sources) == 1:
            destination_url = sources[0][1]
        else:
            # AWS sends each message back to its own source; moto does not record which one that
            # was, so the emulator asks for an explicit destination instead of guessing.
            raise ApiError(
                "UnsupportedOperation",
                f"{len(sources)} queues redrive to this dead-letter queue; the local emulator "
                "needs a DestinationArn to know where each message goes",
            )
        rate = request.get("MaxNumberOfMessagesPerSecond")
        if rate is not None and not (isinstance(rate, int) and 1 <= rate <= _MAX_RATE):
            raise ApiError(
                "InvalidParameterValue",
                f"Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid. "
                f"Reason: must be between 1 and {_MAX_RATE}.",
            )
        with self._lock:
            if any(
                task.source_arn == source_arn and not task.finished.is_set() for task in self._tasks
            ):
                raise ApiError(
                    "UnsupportedOperation",
                    "There is already a task running. Only one active task is allowed for each "
                    "source queue arn at a given time.",
                )
            handle = base64.b64encode(
                json.dumps({"taskId": str(uuid.uuid4()), "sourceArn": source_arn}).encode()
            ).decode()
            task = MoveTask(
                handle=handle,
                source_arn=source_arn,
                destination_arn=destination_arn,
                max_per_second=rate,
                started_ms=int(time.time() * 1000),
            )
            attributes = self._sqs().get_queue_attributes(
                QueueUrl=source_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            task.to_move = int(attributes["ApproximateNumberOfMessages"])
            self._tasks.append(task)
            thread = threading.Thread(
                target=self._move,
                args=(task, source_url, destination_url),
                name="sqs-message-move",
                daemon=True,
            )
            self._threads.append(thread)
        thread.start()
        self._on_event(f"message move task started: {source_arn} -> {destination_url}")
        return {"TaskHandle": handle}

    def _list(self, request: dict[str, Any]) -> dict[str, Any]:
        source_arn = _required(request, "SourceArn")
        self._queue_url(source_arn)
        limit = int(request.get("MaxResults", 1))
        if not 1 <= limit <= 10:
            raise ApiError("InvalidParameterValue", "MaxResults must be between 1 and 10.")
        with self._lock:
            tasks = [task for task in self._tasks if task.source_arn == source_arn]
        newest_first = sorted(tasks, key=lambda task: task.started_ms, reverse=True)
        return {"Results": [task.describe() for task in newest_first[:limit]]}

    def _cancel(self, request: dict[str, Any]) -> dict[str, Any]:
        task = self.task(_required(request, "TaskHandle"))
        if task.finished.is_set():
            raise ApiError(
                "UnsupportedOperation", f"Task is in status {task.status} and cannot be cancelled."
            )
        task.status = "CANCELLING"
        task.cancel_requested.set()
        return {"ApproximateNumberOfMessagesMoved": task.moved}

    # -- moving ---------------------------------------------------------------------------------

    def _move(self, task: MoveTask, source_url: str, destination_url: str) -> None:
        sqs = self._sqs()
        interval = 1.0 / task.max_per_second if task.max_per_second else 0.0
        next_send = time.monotonic()
        try:
            fifo = destination_url.endswith(".fifo")
            while task.moved < task.to_move and not task.cancel_requested.is_set():
                messages = sqs.receive_message(
                    QueueUrl=source_url,
                    MaxNumberOfMessages=min(10, task.to_move - task.moved),
                    VisibilityTimeout=_MOVE_VISIBILITY_SECONDS,
                    WaitTimeSeconds=0,
                    MessageAttributeNames=["All"],
                    MessageSystemAttributeNames=["All"],
                ).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    # Pacing a rate limit, not synchronisation: a cancel ends the wait at once.
                    if task.cancel_requested.wait(max(next_send - time.monotonic(), 0.0)):
                        sqs.change_message_visibility(
                            QueueUrl=source_url,
                            ReceiptHandle=message["ReceiptHandle"],
                            VisibilityTimeout=0,
                        )
                        continue
                    next_send = time.monotonic() + interval
                    sqs.send_message(
                        QueueUrl=destination_url,
                        **_resend_arguments(message, fifo=fifo),
                    )
                    sqs.delete_message(QueueUrl=source_url, ReceiptHandle=message["ReceiptHandle"])
                    task.moved += 1
                    self._activity.changed()
            task.status = "CANCELLED" if task.cancel_requested.is_set() else "COMPLETED"
        except Exception as error:
            task.status = "FAILED"
            task.failure_reason = str(error)
        finally:
            task.finished.set()
            self._activity.changed()
            self._on_event(
                f"message move task {task.status.lower()}: {task.moved} of {task.to_move} moved"
            )

    # -- queues ----------------------------------------------------------------------------------

    def _queue_url(self, arn: str) -> str:
        parts = arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            raise ApiError("ResourceNotFoundException", f"{arn} is not an SQS queue ARN.")
        region, account, name = parts[3], parts[4], parts[5]
        if (region, account) != (self._region, self._account_id):
            raise ApiError(
                "ResourceNotFoundException", f"The resource {arn} does not exist locally."
            )
        try:
            url: str = self._sqs().get_queue_url(QueueName=name)["QueueUrl"]
        except Exception:
            raise ApiError(
                "ResourceNotFoundException", "The resource that you requested does not exist."
            ) from None
        return url

    def _queues_redriving_to(self, dead_letter_arn: str) -> list[tuple[str, str]]:
        """(ARN, URL) of every queue whose RedrivePolicy targets ``dead_letter_arn``."""
        sqs = self._sqs()
        found = []
        for url in sqs.list_queues().get("QueueUrls", []):
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy"]
            )["Attributes"]
            policy = json.loads(attributes.get("RedrivePolicy", "{}"))
            if policy.get("deadLetterTargetArn") == dead_letter_arn:
                found.append((attributes["QueueArn"], url))
        return found


def _required(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError("MissingParameter", f"The request must contain the parameter {name}.")
    return value


def _resend_arguments(message: dict[str, Any], *, fifo: bool) -> dict[str, Any]:
    """SendMessage arguments that carry a received message's body and attributes over."""
    arguments: dict[str, Any] = {"MessageBody": message["Body"]}
    attributes = {
        name: {key: value for key, value in attribute.items() if value not in ([], None)}
        for name, attribute in message.get("MessageAttributes", {}).items()
    }
    if attributes:
        arguments["MessageAttributes"] = attributes
    if fifo:
        system = message.get("Attributes", {})
        arguments["MessageGroupId"] = system.get("MessageGroupId", "redrive")
        arguments["MessageDeduplicationId"] = system.get(
            "MessageDeduplicationId", message["MessageId"]
        )
    return arguments
