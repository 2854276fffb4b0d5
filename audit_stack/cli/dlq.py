"""``audit dlq show`` and ``audit dlq redrive``: what is in the dead-letter queue, why the
recorder rejects it (its own strict parser says so), and moving it back after the fix."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from audit_stack import discovery
from audit_stack.cli import render
from audit_stack.cli.errors import OperatorError, RefusedError
from audit_stack.cli.target import Target
from audit_stack.lambda_code import audit_events_module, contract

if TYPE_CHECKING:
    from audit_events import catalogue as recorder_catalogue
    from audit_events import event as recorder_parser
    from audit_events import sns_signature
else:
    recorder_parser = audit_events_module("event")
    sns_signature = audit_events_module("sns_signature")
    recorder_catalogue = audit_events_module("catalogue")

__all__ = [
    "BODIES_REDACTED",
    "BODIES_SHOWN",
    "RECORDABLE",
    "DeadLetters",
    "Diagnosis",
    "SignatureCheck",
    "diagnose",
    "peek",
    "read_dead_letters",
    "redacted",
    "redrive",
    "run_redrive",
    "run_show",
]

RECORDABLE: Final = (
    "recordable: the recorder failed for another reason (the table, throttling, a timeout); "
    "see its logs"
)
"""The diagnosis of a body that the recorder's parser accepts."""
# `dlq show` hides the messages it has read for at most this long, then makes them visible again
# at once; if the CLI dies in between, they come back by themselves when it ends.
_PEEK_HOLD_SECONDS: Final = 30
_REDRIVE_POLL_SECONDS: Final = (0.2, 2.0)
# `dlq redrive` checks at most this many messages before moving them (each look is a receive).
_REDRIVE_CHECK_LIMIT: Final = 1000
_EVENT_TYPE: Final = re.compile(contract.EVENT_TYPE_PATTERN)
_EVENT_ID: Final = re.compile(r"[0-9a-f-]{1,64}")
_CERTIFICATE_FETCH_SECONDS: Final = 5.0
# Where the emulator serves the certificate it signs its SNS notifications with.
_EMULATOR_CERTIFICATE_FOLDER: Final = "/_emulator/sns/"


@dataclass(frozen=True)
class Diagnosis:
    """Why the recorder would reject an SQS body, and which event it carries, if that shows."""

    poison: bool
    """True when the recorder's parser refuses the body: redriving it cannot help."""
    problem: str
    """The parser's one-line reason ("field: rule"), or :data:`RECORDABLE`."""
    event: str | None
    """``"<event_type> <event_id>"`` when both are readable, never any other field."""


@dataclass(frozen=True)
class SignatureCheck:
    """The recorder's SNS signature check (``audit_events.sns_signature``), made by the CLI:
    notifications of the pipeline's topic only, certificates from the region's SNS host only.

    On the emulator (``endpoint_url``), the certificate it serves on that endpoint is trusted
    too, in this process only: it is the one the emulator's SNS signs with.
    """

    topic_arn: str
    endpoint_url: str | None = None

    def verify(self, body: str) -> None:
        """Raise the recorder's UnverifiedMessageError (a PoisonMessageError) for a body SNS did
        not sign for the topic; CertificateUnavailableError if no certificate can be had now."""
        if self.endpoint_url is not None:
            _trust_emulator_certificate(body, self.endpoint_url)
        sns_signature.verify_notification(
            body, topic_arn=self.topic_arn, timeout_seconds=_CERTIFICATE_FETCH_SECONDS
        )


def _trust_emulator_certificate(body: str, endpoint_url: str) -> None:
    try:
        url = json.loads(body).get("SigningCertURL")
    except (ValueError, RecursionError, AttributeError):
        return
    if not isinstance(url, str) or not url.startswith(
        endpoint_url.rstrip("/") + _EMULATOR_CERTIFICATE_FOLDER
    ):
        return
    # Loopback only: no proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=_CERTIFICATE_FETCH_SECONDS) as response:
            pem = response.read()
        sns_signature.trust_certificate(url, pem)
    except (OSError, sns_signature.InvalidCertificateError):
        return  # not pinned: the check then refuses the URL


def diagnose(
    body: str, signature: SignatureCheck | None = None, catalogue: str | None = None
) -> Diagnosis:
    """What the recorder's own checks say of a body: its SNS signature check (with
    ``signature``), its parser (``audit_events.event.parse_sns_envelope``) and its catalogue
    check (``catalogue``: the recorder's EVENT_CATALOGUE), so a body diagnosed recordable is one
    it would record, and a poison one is one it dead-letters."""
    try:
        if signature is not None:
            signature.verify(body)
        event, _ = recorder_parser.parse_sns_envelope(body)
    except recorder_parser.PoisonMessageError as error:
        return Diagnosis(True, str(error), _event_label(body))
    except sns_signature.CertificateUnavailableError as error:
        return Diagnosis(
            False, f"signature not checked: {error}; the recorder retries", _event_label(body)
        )
    label = f"{event.event_type} {event.event_id}"
    if catalogue:
        try:
            recorder_catalogue.parse_catalogue(catalogue).check(event.event_type, event.details)
        except recorder_catalogue.EventRuleError as error:
            return Diagnosis(True, str(error), label)
    return Diagnosis(False, RECORDABLE, label)


def _event_label(body: str) -> str | None:
    """The type and id of the event in a refused body, if they look like a type and an id.

    Only these two fields, and only in their expected shape: a refused body may hold anything,
    and the label is printed.
    """
    documents: list[Any] = []
    try:
        envelope = json.loads(body)
        documents.append(envelope)
        if isinstance(envelope, dict) and isinstance(envelope.get("Message"), str):
            documents.append(json.loads(envelope["Message"]))
    except (ValueError, RecursionError):
        pass
    for document in reversed(documents):
        if not isinstance(document, dict):
            continue
        event_type, event_id = document.get("event_type"), document.get("event_id")
        if (
            isinstance(event_type, str)
            and _EVENT_TYPE.fullmatch(event_type)
            and isinstance(event_id, str)
            and _EVENT_ID.fullmatch(event_id)
        ):
            return f"{event_type} {event_id}"
    return None


@dataclass(frozen=True)
class DeadLetters:
    """A look at the dead-letter queue: its counts and the messages read, diagnosed."""

    queue_url: str
    visible: int
    in_flight: int
    messages: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue_url": self.queue_url,
            "approximate_visible": self.visible,
            "approximate_in_flight": self.in_flight,
            "messages": self.messages,
        }

    @property
    def poison(self) -> list[dict[str, Any]]:
        """The messages the recorder's parser refuses."""
        return [message for message in self.messages if message["poison"]]


def read_dead_letters(target: Target, limit: int) -> DeadLetters:
    """Up to ``limit`` messages of the dead-letter queue, diagnosed; consumes nothing."""
    sqs = target.client("sqs")
    url = target.resource(discovery.DEAD_LETTER_QUEUE)
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "RedrivePolicy",
        ],
    )["Attributes"]
    if "RedrivePolicy" in attributes:
        # Each receive would count towards that policy's maxReceiveCount and could move messages.
        raise OperatorError(
            "the dead-letter queue has a RedrivePolicy of its own: reading it could move its "
            "messages on; not inspecting it"
        )
    visible = int(attributes["ApproximateNumberOfMessages"])
    in_flight = int(attributes["ApproximateNumberOfMessagesNotVisible"])
    messages = peek(sqs, url, min(visible, limit)) if visible else []
    check = SignatureCheck(target.resource(discovery.TOPIC), target.endpoint_url)
    return DeadLetters(
        url,
        visible,
        in_flight,
        [_describe(message, check, target.event_catalogue) for message in messages],
    )


def peek(sqs: Any, url: str, limit: int) -> list[dict[str, Any]]:
    """Read up to ``limit`` messages without deleting any, and make them visible again.

    Receiving with VisibilityTimeout=0 cannot list more than one batch reliably (the same first
    messages come back every time), so each message is hidden while the rest are read, and all
    are released at the end, even after an error.
    """
    found: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    try:
        while len(found) < limit:
            batch = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, limit - len(found)),
                VisibilityTimeout=_PEEK_HOLD_SECONDS,
                # A long poll asks every SQS server, so no message is missed by sampling.
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                handles.append(message["ReceiptHandle"])
                found.setdefault(message["MessageId"], message)
    finally:
        _release(sqs, url, handles)
    return list(found.values())


def _release(sqs: Any, url: str, handles: list[str]) -> None:
    failed = 0
    for start in range(0, len(handles), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for index, handle in enumerate(handles[start : start + 10])
        ]
        failed += len(
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries).get("Failed", [])
        )
    if failed:
        print(
            f"warning: {failed} message(s) stay hidden for up to {_PEEK_HOLD_SECONDS} s "
            "(nothing is lost)",
            file=sys.stderr,
        )


def _describe(
    message: dict[str, Any], check: SignatureCheck, catalogue: str | None
) -> dict[str, Any]:
    system = message.get("Attributes", {})
    sent = system.get("SentTimestamp")
    diagnosis = diagnose(message["Body"], check, catalogue)
    return {
        "message_id": message["MessageId"],
        "sent_at": render.from_epoch_ms(sent) if sent else None,
        "receive_count": int(system.get("ApproximateReceiveCount", 0)),
        "event": diagnosis.event,
        "poison": diagnosis.poison,
        "problem": diagnosis.problem,
        "body": message["Body"],
        "body_bytes": len(message["Body"].encode("utf-8")),
        "message_attributes": message.get("MessageAttributes", {}),
    }


BODIES_REDACTED: Final = (
    "Message bodies and attribute values are not shown: they may hold personal data (an "
    "address in clear, a producer's details). Show them with --show-bodies."
)
BODIES_SHOWN: Final = (
    "Message bodies shown on request (--show-bodies): they may hold personal data."
)


def redacted(message: dict[str, Any]) -> dict[str, Any]:
    """A described message without its body and its attributes' values (names and types stay)."""
    return {
        **message,
        "body": None,
        "message_attributes": {
            name: {"DataType": value.get("DataType")}
            for name, value in message["message_attributes"].items()
        },
    }


def run_show(target: Target, arguments: argparse.Namespace) -> int:
    letters = read_dead_letters(target, arguments.limit)
    show_bodies = bool(getattr(arguments, "show_bodies", False))
    if not show_bodies:
        # Redacted by default, in --json too: the diagnosis needs no body.
        letters = DeadLetters(
            letters.queue_url,
            letters.visible,
            letters.in_flight,
            [redacted(message) for message in letters.messages],
        )
    if arguments.output == "json":
        render.print_json({**letters.to_dict(), "bodies_shown": show_bodies})
        return 0
    print(
        f"Dead-letter queue {render.queue_name(letters.queue_url)}: {letters.visible} message(s) "
        f"visible, {letters.in_flight} in flight"
    )
    if not letters.messages:
        if letters.in_flight:
            print("(messages in flight are being read or moved by someone else; look again soon)")
        return 0
    print()
    rows = [
        [
            message["message_id"],
            message["sent_at"] or "",
            str(message["receive_count"]),
            message["event"] or "-",
            message["problem"],
        ]
        for message in letters.messages
    ]
    print(render.table(["MESSAGE ID", "SENT (UTC)", "RECEIVES", "EVENT", "WHY IT FAILED"], rows))
    print(f"\n{BODIES_SHOWN if show_bodies else BODIES_REDACTED}")
    if show_bodies:
        for message in letters.messages:
            print(f"\n{message['message_id']}:\n{message['body']}")
    if letters.visible > len(letters.messages):
        print(
            f"\n{letters.visible - len(letters.messages)} more not shown "
            f"(--limit {arguments.limit})."
        )
    print(
        "\nNothing was consumed: the messages stay in the queue. RECEIVES counts this look too."
        f"\nFix the cause, then move them back to the queue: {target.again('dlq', 'redrive')}"
    )
    return 0


def redrive(target: Target, *, most: int | None = None, timeout: float = 600.0) -> dict[str, Any]:
    """Move the dead-letter queue's messages (at most ``most``) back to the recorder's queue;
    what was moved, and how."""
    sqs = target.client("sqs")
    dead_letter_url = target.resource(discovery.DEAD_LETTER_QUEUE)
    queue_url = target.resource(discovery.QUEUE)
    attributes = sqs.get_queue_attributes(
        QueueUrl=dead_letter_url, AttributeNames=["QueueArn", "ApproximateNumberOfMessages"]
    )["Attributes"]
    if int(attributes["ApproximateNumberOfMessages"]) == 0:
        result: dict[str, Any] = {"moved": 0, "status": "NOTHING_TO_MOVE"}
    elif most is None:
        result = _move_task(sqs, attributes["QueueArn"], timeout)
    else:
        result = _move_some(sqs, dead_letter_url, queue_url, most)
    return {"source": dead_letter_url, "destination": queue_url, **result}


def run_redrive(target: Target, arguments: argparse.Namespace) -> int:
    poison = _unrecordable(target)
    if poison:
        _warn_poison(target, poison, forced=arguments.force)
        if not arguments.force:
            raise RefusedError(
                f"not redriving: {len(poison)} message(s) would fail again; look with "
                f"`{target.again('dlq', 'show')}`, or move them anyway with --force"
            )
    result = redrive(target, most=arguments.max, timeout=arguments.timeout)
    result["unrecordable"] = len(poison)
    if arguments.output == "json":
        render.print_json(result)
    elif result["status"] == "NOTHING_TO_MOVE":
        print("The dead-letter queue is empty: nothing to redrive.")
    else:
        print(
            f"Moved {result['moved']} message(s) from {render.queue_name(result['source'])} "
            f"back to {render.queue_name(result['destination'])} ({result['status']})."
        )
        print(f"The recorder picks them up now; watch with: {target.again('status')}")
    if result["status"] not in {"COMPLETED", "NOTHING_TO_MOVE"}:
        reason = result.get("failure_reason") or "see ListMessageMoveTasks"
        raise OperatorError(f"message move task {result['status']}: {reason}")
    return 0


def _unrecordable(target: Target) -> list[dict[str, Any]]:
    """The dead letters the recorder's parser refuses, among the first thousand: all of them,
    even with --max, since SQS decides which messages a partial move takes.

    A dead-letter queue with a redrive policy of its own is not read (see ``dlq show``): the
    redrive then goes ahead unchecked, with a warning.
    """
    try:
        letters = read_dead_letters(target, _REDRIVE_CHECK_LIMIT)
    except OperatorError as error:
        print(f"warning: messages not checked before the redrive: {error}", file=sys.stderr)
        return []
    return letters.poison


def _warn_poison(target: Target, poison: Sequence[dict[str, Any]], *, forced: bool) -> None:
    reasons: dict[str, int] = {}
    for message in poison:
        reasons[message["problem"]] = reasons.get(message["problem"], 0) + 1
    print(
        f"warning: {len(poison)} message(s) in the dead-letter queue are unrecordable: the "
        "recorder's parser refuses them, so a redrive sends them back to the dead-letter queue"
        + (" (moving them anyway: --force)" if forced else ""),
        file=sys.stderr,
    )
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        print(f"  {count} x {reason}", file=sys.stderr)


def _move_task(sqs: Any, dead_letter_arn: str, timeout: float) -> dict[str, Any]:
    """StartMessageMoveTask back to the source queue; wait for it and report what it moved."""
    try:
        handle = sqs.start_message_move_task(SourceArn=dead_letter_arn)["TaskHandle"]
    except ClientError as error:
        if "already a task running" in str(error).lower():
            raise OperatorError(
                "a redrive of this dead-letter queue is already running; wait for it"
            ) from None
        raise
    deadline = time.monotonic() + timeout
    delay = _REDRIVE_POLL_SECONDS[0]
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=dead_letter_arn, MaxResults=10)["Results"]
        # A running task shows its handle; a finished one does not, and it is then the newest.
        task = next((t for t in tasks if t.get("TaskHandle") == handle), None) or tasks[0]
        if task["Status"] not in {"RUNNING", "CANCELLING"}:
            break
        if time.monotonic() >= deadline:
            raise OperatorError(
                f"the redrive is still running after {timeout:.0f} s "
                f"({task.get('ApproximateNumberOfMessagesMoved', 0)} of "
                f"{task.get('ApproximateNumberOfMessagesToMove', '?')} moved); it goes on in "
                f"the background: aws sqs list-message-move-tasks --source-arn {dead_letter_arn}"
            )
        time.sleep(delay)
        delay = min(delay * 2, _REDRIVE_POLL_SECONDS[1])
    return {
        "moved": int(task.get("ApproximateNumberOfMessagesMoved", 0)),
        "to_move": int(task.get("ApproximateNumberOfMessagesToMove", 0)),
        "status": task["Status"],
        "failure_reason": task.get("FailureReason"),
        "method": "StartMessageMoveTask",
    }


def _move_some(sqs: Any, source_url: str, destination_url: str, most: int) -> dict[str, Any]:
    """Move at most ``most`` messages by hand (receive, send, delete), since a message move task
    has a rate but no count. A message is sent before it is deleted: if the CLI stops in
    between, it is in both queues, and the recorder skips the copy it has already recorded."""
    moved = 0
    while moved < most:
        batch = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=min(10, most - moved),
            VisibilityTimeout=_PEEK_HOLD_SECONDS,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            request: dict[str, Any] = {"QueueUrl": destination_url, "MessageBody": message["Body"]}
            attributes = {
                name: {key: value for key, value in attribute.items() if value not in ([], None)}
                for name, attribute in message.get("MessageAttributes", {}).items()
            }
            if attributes:
                request["MessageAttributes"] = attributes
            sqs.send_message(**request)
            sqs.delete_message(QueueUrl=source_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return {"moved": moved, "status": "COMPLETED", "method": f"receive/send/delete, --max {most}"}
