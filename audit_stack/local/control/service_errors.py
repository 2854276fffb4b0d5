"""Where moto answers success and AWS answers an error or more: installed with the other moto hooks.

- SQS ``ChangeMessageVisibility`` of a message no longer in flight fails with
  ``MessageNotInflight``, and its 12-hour limit counts from the message's latest receive, not its
  send (moto's check made ``audit dlq show`` fail on any message older than 12 hours).
- A message the redrive policy moves to a dead-letter queue carries the
  ``DeadLetterQueueSourceArn`` system attribute, as SQS sets it.
- KMS ``Verify`` of a signature that does not verify raises ``KMSInvalidSignatureException``
  (moto answers ``SignatureValid: false``, which AWS never does).

Each replacement keeps moto's own function and restores it on ``uninstall``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import moto.kms.models
import moto.sqs.models
import moto.sqs.responses
from moto.core.exceptions import JsonRESTError
from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid, SQSException

__all__ = ["ServiceErrorHooks"]

# Typed as Any: these hooks replace attributes of moto's classes.
_SQS: Any = moto.sqs.models
_SQS_RESPONSES: Any = moto.sqs.responses
_KMS: Any = moto.kms.models

MAXIMUM_VISIBILITY_MS: Final = 12 * 60 * 60 * 1000
"""docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html:
at most 12 hours from the time the message was received."""
DEAD_LETTER_SOURCE: Final = "DeadLetterQueueSourceArn"
_LAST_RECEIVED = "_emulator_last_received_ms"


class MessageNotInflight(SQSException):
    """docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html"""

    def __init__(self) -> None:
        super().__init__(
            "AWS.SimpleQueueService.MessageNotInflight", "The message is not in flight."
        )


class KMSInvalidSignatureException(JsonRESTError):
    """docs.aws.amazon.com/kms/latest/APIReference/API_Verify.html: "If the signature is not
    valid, the Verify operation fails with a KMSInvalidSignatureException"."""

    code = 400

    def __init__(self) -> None:
        super().__init__("KMSInvalidSignatureException", "")
        self.description = '{"__type":"KMSInvalidSignatureException"}'


class ServiceErrorHooks:
    """Installs the replacements above into moto's in-process backends, and removes them."""

    def __init__(self) -> None:
        self._originals: dict[str, Any] = {}

    def install(self) -> None:
        if self._originals:
            return
        self._originals = {
            "mark_received": _SQS.Message.mark_received,
            "change_visibility": _SQS.SQSBackend.change_message_visibility,
            "change_visibility_batch": _SQS.SQSBackend.change_message_visibility_batch,
            "backend_receive": _SQS.SQSBackend.receive_message,
            "response_receive": _SQS_RESPONSES.SQSResponse.receive_message,
            "verify": _KMS.KmsBackend.verify,
        }
        _SQS.Message.mark_received = _recording_receive(self._originals["mark_received"])
        _SQS.SQSBackend.change_message_visibility = _change_message_visibility
        _SQS.SQSBackend.change_message_visibility_batch = _change_message_visibility_batch
        _SQS.SQSBackend.receive_message = _marking_dead_letters(self._originals["backend_receive"])
        _SQS_RESPONSES.SQSResponse.receive_message = _with_dead_letter_source(
            self._originals["response_receive"]
        )
        _KMS.KmsBackend.verify = _raising_verify(self._originals["verify"])

    def uninstall(self) -> None:
        if not self._originals:
            return
        _SQS.Message.mark_received = self._originals["mark_received"]
        _SQS.SQSBackend.change_message_visibility = self._originals["change_visibility"]
        _SQS.SQSBackend.change_message_visibility_batch = self._originals["change_visibility_batch"]
        _SQS.SQSBackend.receive_message = self._originals["backend_receive"]
        _SQS_RESPONSES.SQSResponse.receive_message = self._originals["response_receive"]
        _KMS.KmsBackend.verify = self._originals["verify"]
        self._originals = {}


def _recording_receive(original: Callable[..., None]) -> Callable[..., None]:
    def mark_received(message: Any, visibility_timeout: int | None = None) -> None:
        setattr(message, _LAST_RECEIVED, _SQS.unix_time_millis())
        original(message, visibility_timeout)

    return mark_received


def _change_message_visibility(
    backend: Any, queue_name: str, receipt_handle: str, visibility_timeout: int
) -> None:
    queue = backend.get_queue(queue_name)
    for message in queue._messages:
        if not message.had_receipt_handle(receipt_handle):
            continue
        if message.visible:
            # Its visibility timeout has ended: it is not in flight any more.
            raise MessageNotInflight()
        now_ms = _SQS.unix_time_millis()
        received_ms = getattr(message, _LAST_RECEIVED, message.sent_timestamp)
        if now_ms + int(visibility_timeout) * 1000 - received_ms > MAXIMUM_VISIBILITY_MS:
            raise InvalidParameterValue(
                f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: "
                "Total VisibilityTimeout for the message is beyond the limit [43200 seconds]"
            )
        message.change_visibility(visibility_timeout)
        if message.visible and message in queue.pending_messages:
            queue.pending_messages.remove(message)
        return
    raise ReceiptHandleIsInvalid()


def _change_message_visibility_batch(
    backend: Any, queue_name: str, entries: list[dict[str, Any]]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Each entry succeeds or fails on its own, with the error the single call would give
    (moto's batch knows only ReceiptHandleIsInvalid, so MessageNotInflight failed the request)."""
    succeeded: list[str] = []
    failed: list[dict[str, Any]] = []
    for entry in entries:
        try:
            _change_message_visibility(
                backend, queue_name, entry["ReceiptHandle"], int(entry["VisibilityTimeout"])
            )
        except SQSException as error:
            failed.append(
                {
                    "Id": entry["Id"],
                    "SenderFault": True,
                    "Code": error.code,
                    "Message": error.message,
                }
            )
        else:
            succeeded.append(entry["Id"])
    return succeeded, failed


def _marking_dead_letters(original: Callable[..., Any]) -> Callable[..., Any]:
    def receive_message(backend: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = backend.get_queue(queue_name)
        if queue.dead_letter_queue is not None and queue.redrive_policy:
            limit = int(queue.redrive_policy["maxReceiveCount"])
            for message in queue._messages:
                # The messages this receive moves to the DLQ (moto's own rule).
                if message.visible and message.approximate_receive_count >= limit:
                    message.system_attributes[DEAD_LETTER_SOURCE] = queue.queue_arn
        return original(backend, queue_name, *args, **kwargs)

    return receive_message


def _with_dead_letter_source(original: Callable[..., Any]) -> Callable[..., Any]:
    def receive_message(response: Any) -> Any:
        result = original(response)
        wanted = set(response._get_param("AttributeNames", [])) | set(
            response._get_param("MessageSystemAttributeNames", [])
        )
        messages = getattr(result, "result", {}).get("Messages", [])
        if not messages or not wanted & {"All", DEAD_LETTER_SOURCE}:
            return result
        queue = response.sqs_backend.get_queue(response._get_queue_name())
        sources = {
            message.id: message.system_attributes[DEAD_LETTER_SOURCE]
            for message in queue._messages
            if DEAD_LETTER_SOURCE in message.system_attributes
        }
        for message in messages:
            if message["MessageId"] in sources:
                message.setdefault("Attributes", {})[DEAD_LETTER_SOURCE] = sources[
                    message["MessageId"]
                ]
        return result

    return receive_message


def _raising_verify(original: Callable[..., tuple[str, bool, str]]) -> Callable[..., Any]:
    def verify(backend: Any, *args: Any, **kwargs: Any) -> tuple[str, bool, str]:
        key_arn, valid, algorithm = original(backend, *args, **kwargs)
        if not valid:
            raise KMSInvalidSignatureException()
        return key_arn, valid, algorithm

    return verify
