"""The recordDeletedAccountInfo Lambda: writes audit events from the queue to the table, once each.

Reads TABLE_NAME, TOPIC_ARN (the one topic whose SNS-signed notifications it accepts),
SEAL_QUEUE_URL, EVENT_TYPE_INDEX_SHARDS (0: no by-type index),
PSEUDONYM_SECRET_ARN (when set, events that name their subject by e-mail address, such as
version 1 messages still in the queues, are recorded under the address's pseudonym),
POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL and POWERTOOLS_METRICS_NAMESPACE.

A message is recorded only if SNS signed it for TOPIC_ARN (``sns_signature.py``); anything else
(a direct invoke with a hand-made event, a forged envelope sent to the queue) is poison and
counted as UnverifiedMessages.

After a batch, the recorder reports every item it wrote (or found already written) to the seal
queue, which only its role may send to; the sealer signs those items into the digest chain
(``integrity.py``). A record whose report cannot be sent is returned as a batch item failure,
so SQS redelivers it and the report is sent again: nothing written goes unreported.

Table item, one per event (written once, never updated or deleted):

================  ====  ========================================================================
attribute         type  meaning
================  ====  ========================================================================
subject           S     partition key: whom the event is about (AccountDeleted: the address's
                        HMAC-SHA-256 pseudonym, or the normalised address in clear)
event_key         S     sort key: ``<occurred_at>#<event_id>``, a subject's events in time
                        order; also the sort key of the ``by-event-type-shard`` index
event_type_shard  S     ``<event_type>#<shard>``, shard = event id mod EVENT_TYPE_INDEX_SHARDS:
                        partition key of the ``by-event-type-shard`` index (absent without it)
subject_type      S     ``hmac-sha256`` or ``email``: what ``subject`` holds
event_type        S     e.g. ``AccountDeleted``
event_id          S     lowercase UUID chosen by the publisher (UUID8 from an idempotency key)
occurred_at       S     when it happened, UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
schema_version    N     version of the event schema it was published in (1 or 2)
idempotent        BOOL  event_id derives from a caller's idempotency key
source            S     what published it, e.g. ``deleteAccount``
details           M     event-specific data (AccountDeleted: ``{}``, or ``{"email": ...}`` in
                        clear)
recorded_at       S     when this function wrote the item, same format as occurred_at
sns_message_id    S     MessageId of the SNS notification that delivered the event
topic_arn         S     the topic whose signed notification delivered it (provenance)
record_hash       S     SHA-256 of the item's canonical content (``integrity.record_hash``)
================  ====  ========================================================================

An idempotent event is written together with a marker item, ``subject`` =
``idempotency#<event_id>``, ``event_key`` = ``idempotency``, in one transaction that fails if
the marker exists: a retry with the same key is the same event id, so it is recorded once
whenever it arrives. Markers carry a ``record_hash`` too and are sealed like records.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from .clients import OutOfTimeError, client, pseudonym_secret
from .contract import (
    ENV_EVENT_TYPE_INDEX_SHARDS,
    ENV_PSEUDONYM_SECRET_ARN,
    ENV_SEAL_QUEUE_URL,
    ENV_TABLE_NAME,
    ENV_TOPIC_ARN,
    EVENT_TYPE_ATTRIBUTE,
    EVENT_TYPE_SHARD_ATTRIBUTE,
    IDEMPOTENCY_MARKER_PREFIX,
    IDEMPOTENCY_MARKER_SORT_KEY,
    METRIC_DUPLICATES_SKIPPED,
    METRIC_EVENTS_RECORDED,
    METRIC_POISON_MESSAGES,
    METRIC_UNVERIFIED_MESSAGES,
    PARTITION_KEY,
    RECORD_HASH_ATTRIBUTE,
    RECORDED_AT_ATTRIBUTE,
    SORT_KEY,
    SUBJECT_TYPE_ATTRIBUTE,
    SUBJECT_TYPE_EMAIL,
    TOPIC_ARN_ATTRIBUTE,
)
from .event import (
    AuditEvent,
    PoisonMessageError,
    SnsProvenance,
    format_timestamp,
    parse_sns_envelope,
    pseudonymize,
)
from .integrity import RecordRef, notice_body, with_record_hash
from .sns_signature import UnverifiedMessageError, verify_notification

# A record needs at least this much of the invocation left, or it is handed back to SQS unread
# rather than risking the whole batch on the function timeout.
MIN_SECONDS_PER_RECORD = 0.5
# DynamoDB writes in flight at once per invocation: enough to hide a batch of 10's latency,
# few enough that the threads and their connections stay cheap in a small function.
MAX_CONCURRENT_WRITES = 8

# DynamoDB's documented limits; breaking one is a property of the message, so it is poison
# rather than an error worth retrying.
_MAX_PARTITION_KEY_BYTES = 2048
_MAX_NESTING_DEPTH = 32
_MAX_NUMBER_DIGITS = 38
_MIN_NUMBER_EXPONENT = -130
_MAX_NUMBER_EXPONENT = 125
# Records per seal notice: a notice stays far below SQS's 256 KiB message limit.
_RECORDS_PER_NOTICE = 200

logger = Logger()
metrics = Metrics()
# raise_on_entire_batch_failure=False: a batch of only poison messages must still be answered
# with its failed items, not with an error that hides which messages failed.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@dataclass(frozen=True)
class _Settings:
    table_name: str
    topic_arn: str
    seal_queue_url: str
    event_type_shards: int
    secret_arn: str | None


@dataclass
class _BatchCounts:
    recorded: int = 0
    duplicates: int = 0
    poison: int = 0
    unverified: int = 0
    written: list[tuple[str, RecordRef]] = field(default_factory=list)
    """(SQS message id, item) for every item this batch wrote or found already written."""


def utc_now() -> datetime:
    """The clock ``recorded_at`` is read from (a seam: tests replace it to fix the time)."""
    return datetime.now(UTC)


# log_event=False even if POWERTOOLS_LOGGER_LOG_EVENT is set: the records hold personal data.
@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Record each SQS record's event; failed records are returned as batchItemFailures."""
    settings = _Settings(
        table_name=os.environ[ENV_TABLE_NAME],
        topic_arn=os.environ[ENV_TOPIC_ARN],
        seal_queue_url=os.environ[ENV_SEAL_QUEUE_URL],
        event_type_shards=int(os.environ.get(ENV_EVENT_TYPE_INDEX_SHARDS, "0")),
        secret_arn=os.environ.get(ENV_PSEUDONYM_SECRET_ARN) or None,
    )
    counts = _BatchCounts()
    results = _write_batch(event.get("Records", []), settings=settings, context=context)
    response = process_partial_response(
        event=event,
        record_handler=partial(_record_message, results=results, counts=counts),
        processor=processor,
        context=context,
    )
    unreported = _report_for_sealing(settings.seal_queue_url, counts.written, context)
    failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    response["batchItemFailures"].extend(
        {"itemIdentifier": message_id} for message_id in unreported if message_id not in failed
    )
    # Emitted even when zero, so dashboards and alarms see "none" rather than "no data".
    metrics.add_metric(name=METRIC_EVENTS_RECORDED, unit=MetricUnit.Count, value=counts.recorded)
    metrics.add_metric(
        name=METRIC_DUPLICATES_SKIPPED, unit=MetricUnit.Count, value=counts.duplicates
    )
    metrics.add_metric(name=METRIC_POISON_MESSAGES, unit=MetricUnit.Count, value=counts.poison)
    metrics.add_metric(
        name=METRIC_UNVERIFIED_MESSAGES, unit=MetricUnit.Count, value=counts.unverified
    )
    logger.info(
        "Batch processed",
        extra={
            "recorded": counts.recorded,
            "duplicates": counts.duplicates,
            "poison": counts.poison,
            "unverified": counts.unverified,
            "failed": len(response["batchItemFailures"]),
        },
    )
    return response


def _remaining_seconds(context: LambdaContext) -> float:
    return context.get_remaining_time_in_millis() / 1000


def _report_for_sealing(
    queue_url: str, written: list[tuple[str, RecordRef]], context: LambdaContext
) -> list[str]:
    """Send the batch's items to the seal queue; the SQS message ids whose report failed."""
    unreported: list[str] = []
    for start in range(0, len(written), _RECORDS_PER_NOTICE):
        chunk = written[start : start + _RECORDS_PER_NOTICE]
        try:
            client("sqs", _remaining_seconds(context)).send_message(
                QueueUrl=queue_url, MessageBody=notice_body(ref for _, ref in chunk)
            )
        except (ClientError, BotoCoreError, OutOfTimeError) as error:
            logger.warning(
                "Seal notice not sent; SQS will redeliver its messages",
                extra={"records": len(chunk), "error_code": type(error).__name__},
            )
            unreported.extend(message_id for message_id, _ in chunk)
    return unreported


@dataclass(frozen=True)
class _Write:
    """One message's prepared write: its items (an idempotent event's marker first)."""

    message_id: str
    idempotent: bool
    items: list[dict[str, Any]]
    log_keys: dict[str, str]

    @property
    def contended_key(self) -> tuple[str, str]:
        """The key two deliveries of the same event both write (the marker's, if any)."""
        first = self.items[0]
        return first[PARTITION_KEY]["S"], first[SORT_KEY]["S"]


@dataclass(frozen=True)
class _Outcome:
    """What one message's write did: recorded, or found already recorded (a duplicate)."""

    duplicate: bool
    written: list[RecordRef]


# A message's result: its outcome, or the error that makes it a batch item failure.
_Result = _Outcome | Exception


def _prepare(record: SQSRecord, *, settings: _Settings, context: LambdaContext) -> _Write:
    """Parse one SQS message into the items to write; raises PoisonMessageError for bad input."""
    if _remaining_seconds(context) < MIN_SECONDS_PER_RECORD:
        raise OutOfTimeError("too little of the invocation left; SQS will redeliver")
    # Only what SNS signed for our topic is read at all (a direct invoke is not).
    verify_notification(
        record.body, topic_arn=settings.topic_arn, timeout_seconds=_remaining_seconds(context)
    )
    event, provenance = parse_sns_envelope(record.body)
    if settings.secret_arn is not None and event.subject_type == SUBJECT_TYPE_EMAIL:
        # An address in clear (a version 1 message, a clear producer) is not recorded.
        secret = pseudonym_secret(settings.secret_arn, _remaining_seconds(context))
        event = pseudonymize(event, secret)
    item = to_item(
        event,
        provenance,
        recorded_at=format_timestamp(utc_now()),
        event_type_shards=settings.event_type_shards,
    )
    items = (
        [to_idempotency_marker(event, recorded_at=item["recorded_at"]["S"]), item]
        if event.idempotent
        else [item]
    )
    return _Write(
        message_id=record.message_id,
        idempotent=event.idempotent,
        items=items,
        log_keys={
            "event_id": event.event_id,
            "event_type": event.event_type,
            "sns_message_id": provenance.sns_message_id,
        },
    )


def _write(write: _Write, *, table_name: str, context: LambdaContext) -> _Outcome:
    """Write one message's items once; a condition failure is a duplicate, not an error."""
    # Checked again here: with a pool, a write may start well after its message was parsed.
    if _remaining_seconds(context) < MIN_SECONDS_PER_RECORD:
        raise OutOfTimeError("too little of the invocation left; SQS will redeliver")
    dynamodb = client("dynamodb", _remaining_seconds(context))
    # Redeliveries are normal for SQS; the first write of an event is the record.
    only_once = f"attribute_not_exists({PARTITION_KEY})"
    # On a duplicate, the stored items come back, so their seal notices can be sent again (the
    # first delivery may have written them and died before its notice was sent).
    stored = "ALL_OLD"
    try:
        if write.idempotent:
            # One transaction: the event and its marker, or neither. A retry of the caller has
            # the same event id but another time (another key): the marker catches it.
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table_name,
                            "Item": written_item,
                            "ConditionExpression": only_once,
                            "ReturnValuesOnConditionCheckFailure": stored,
                        }
                    }
                    for written_item in write.items
                ]
            )
        else:
            dynamodb.put_item(
                TableName=table_name,
                Item=write.items[0],
                ConditionExpression=only_once,
                ReturnValuesOnConditionCheckFailure=stored,
            )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code == "ConditionalCheckFailedException" or _condition_cancelled(error):
            logger.info("Duplicate delivery skipped; event already recorded", extra=write.log_keys)
            old_items = [error.response.get("Item")] + [
                reason.get("Item") for reason in error.response.get("CancellationReasons", [])
            ]
            return _Outcome(
                duplicate=True,
                written=[
                    _record_ref(old) for old in old_items if old and RECORD_HASH_ATTRIBUTE in old
                ],
            )
        logger.warning(
            "Write failed; SQS will redeliver", extra={**write.log_keys, "error_code": code}
        )
        raise
    except BotoCoreError as error:  # no answer from DynamoDB: timeouts, connection errors
        logger.warning(
            "Write failed; SQS will redeliver",
            extra={**write.log_keys, "error_code": type(error).__name__},
        )
        raise
    logger.info("Recorded audit event", extra=write.log_keys)
    return _Outcome(duplicate=False, written=[_record_ref(new) for new in write.items])


def _write_in_order(
    writes: list[_Write], *, table_name: str, context: LambdaContext
) -> list[_Result]:
    """Write messages that contend for one key one after another, in delivery order."""
    results: list[_Result] = []
    for write in writes:
        try:
            results.append(_write(write, table_name=table_name, context=context))
        # Any error, as the batch processor would catch it: it re-raises it for this message.
        except Exception as error:
            results.append(error)
    return results


def _write_batch(
    records: list[dict[str, Any]], *, settings: _Settings, context: LambdaContext
) -> dict[str, deque[_Result]]:
    """Every message's result, by SQS message id (in delivery order for a repeated id).

    Parsing is CPU work and runs first, in order. The writes then overlap: each waits mostly on
    DynamoDB, so a batch costs about one write's latency per MAX_CONCURRENT_WRITES messages
    rather than one per message. Messages writing the same key (a duplicate delivery in one
    batch) share a worker and keep their order, so exactly one of them records the event.
    """
    results: dict[str, deque[_Result]] = {}
    prepared: list[tuple[str, _Write | Exception]] = []
    for raw in records:
        record = SQSRecord(raw)
        try:
            write = _prepare(record, settings=settings, context=context)
        # Any error, as the batch processor would catch it: it re-raises it for this message.
        except Exception as error:
            prepared.append((record.message_id, error))
            continue
        prepared.append((record.message_id, write))
    by_key: dict[tuple[str, str], list[_Write]] = {}
    for _, found in prepared:
        if isinstance(found, _Write):
            by_key.setdefault(found.contended_key, []).append(found)
    groups = list(by_key.values())
    write_group = partial(_write_in_order, table_name=settings.table_name, context=context)
    if len(groups) <= 1:
        outcomes = [write_group(group) for group in groups]
    else:
        # Bounded by the remaining time too: every write checks it before starting and its
        # client's retries end within it, so the pool is done before the function times out.
        with ThreadPoolExecutor(
            max_workers=min(MAX_CONCURRENT_WRITES, len(groups)),
            thread_name_prefix="audit-write",
        ) as pool:
            outcomes = list(pool.map(write_group, groups))
    written: dict[int, _Result] = {
        id(write): result
        for group, group_results in zip(groups, outcomes, strict=True)
        for write, result in zip(group, group_results, strict=True)
    }
    for message_id, found in prepared:
        result = written[id(found)] if isinstance(found, _Write) else found
        results.setdefault(message_id, deque()).append(result)
    return results


def _record_message(
    record: SQSRecord,
    *,
    results: dict[str, deque[_Result]],
    counts: _BatchCounts,
) -> None:
    """Account for one message's result; raising makes it a batch item failure (SQS retries)."""
    result = results[record.message_id].popleft()
    if isinstance(result, PoisonMessageError):
        counts.poison += 1
        counts.unverified += isinstance(result, UnverifiedMessageError)
        # After the queue's maxReceiveCount receives, SQS moves the message to the DLQ.
        logger.error(
            "Poison message",
            extra={
                "sqs_message_id": record.message_id,
                "receive_count": record.attributes.approximate_receive_count,
                "reason": str(result),
            },
        )
        raise result
    if isinstance(result, Exception):
        raise result
    if result.duplicate:
        counts.duplicates += 1
    else:
        counts.recorded += 1
    counts.written.extend((record.message_id, ref) for ref in result.written)


def _record_ref(item: dict[str, Any]) -> RecordRef:
    return RecordRef(
        subject=item[PARTITION_KEY]["S"],
        event_key=item[SORT_KEY]["S"],
        record_hash=item[RECORD_HASH_ATTRIBUTE]["S"],
        recorded_at=item.get(RECORDED_AT_ATTRIBUTE, {}).get("S", ""),
    )


def _condition_cancelled(error: ClientError) -> bool:
    """A transaction cancelled only because a condition failed: the marker already exists."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons", [])
    codes = {reason.get("Code") for reason in reasons} - {"None", None}
    return bool(codes) and codes <= {"ConditionalCheckFailed"}


def event_type_shard(event_type: str, event_id: str, shards: int) -> str:
    """The by-type index's partition key: the type and a shard taken from the event id.

    Event ids are random (UUID4) or HMAC outputs (UUID8), so their first 32 bits spread the
    events of one type evenly over the shards.
    """
    return f"{event_type}#{int(event_id[:8], 16) % shards}"


def to_item(
    event: AuditEvent,
    provenance: SnsProvenance,
    *,
    recorded_at: str,
    event_type_shards: int = 0,
) -> dict[str, Any]:
    """The DynamoDB item (low-level attribute values) that records ``event``, with its hash.

    ``event_type_shards``: the by-type index's shard count, 0 when the table has no such index.
    """
    subject = _text("subject", event.subject)
    if len(subject.encode("utf-8")) > _MAX_PARTITION_KEY_BYTES:
        raise PoisonMessageError(f"subject: must be at most {_MAX_PARTITION_KEY_BYTES} bytes")
    item = {
        PARTITION_KEY: {"S": subject},
        SORT_KEY: {"S": event.event_key},
        SUBJECT_TYPE_ATTRIBUTE: {"S": event.subject_type},
        EVENT_TYPE_ATTRIBUTE: {"S": event.event_type},
        "event_id": {"S": event.event_id},
        "occurred_at": {"S": event.occurred_at},
        "schema_version": {"N": str(event.schema_version)},
        "idempotent": {"BOOL": event.idempotent},
        "source": {"S": _text("source", event.source)},
        "details": _attribute_value("details", event.details, depth=1),
        RECORDED_AT_ATTRIBUTE: {"S": recorded_at},
        "sns_message_id": {"S": _text("sns_message_id", provenance.sns_message_id)},
        TOPIC_ARN_ATTRIBUTE: {"S": _text("topic_arn", provenance.topic_arn)},
    }
    if event_type_shards > 0:
        item[EVENT_TYPE_SHARD_ATTRIBUTE] = {
            "S": event_type_shard(event.event_type, event.event_id, event_type_shards)
        }
    return with_record_hash(item)


def to_idempotency_marker(event: AuditEvent, *, recorded_at: str | None = None) -> dict[str, Any]:
    """The item that makes an idempotent event's id unique in the table, whatever its time.

    Its own partition (not the subject's), so that it never shows in an account's trail and
    markers spread over the key space; it carries no personal data.
    """
    marker: dict[str, Any] = {
        PARTITION_KEY: {"S": f"{IDEMPOTENCY_MARKER_PREFIX}{event.event_id}"},
        SORT_KEY: {"S": IDEMPOTENCY_MARKER_SORT_KEY},
        "event_id": {"S": event.event_id},
        "occurred_at": {"S": event.occurred_at},
    }
    if recorded_at is not None:
        marker[RECORDED_AT_ATTRIBUTE] = {"S": recorded_at}
    return with_record_hash(marker)


def _attribute_value(field: str, value: object, *, depth: int) -> dict[str, Any]:
    if isinstance(value, list | dict) and depth > _MAX_NESTING_DEPTH:
        raise PoisonMessageError(f"{field}: must be nested at most {_MAX_NESTING_DEPTH} levels")
    if isinstance(value, str):
        return {"S": _text(field, value)}
    # bool before int: bool is an int subclass.
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": _number(field, value)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, list):
        return {"L": [_attribute_value(field, item, depth=depth + 1) for item in value]}
    if isinstance(value, dict):
        return {
            "M": {
                _text(field, str(key)): _attribute_value(field, item, depth=depth + 1)
                for key, item in value.items()
            }
        }
    raise PoisonMessageError(f"{field}: must hold only JSON values")


def _text(field: str, value: str) -> str:
    # JSON escapes can produce lone surrogates: not Unicode text that DynamoDB can store.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PoisonMessageError(f"{field}: must be valid Unicode text") from None
    return value


def _number(field: str, value: int | float) -> str:
    try:
        # repr() of a float is its shortest round-tripping decimal form.
        text = str(value) if isinstance(value, int) else repr(value)
    except ValueError:  # an int beyond Python's digit limit for str()
        raise PoisonMessageError(f"{field}: numbers must fit DynamoDB's number range") from None
    number = Decimal(text)
    if not number.is_finite():
        raise PoisonMessageError(f"{field}: numbers must be finite")
    if number != 0:
        significant_digits = "".join(map(str, number.as_tuple().digits)).strip("0")
        if (
            len(significant_digits) > _MAX_NUMBER_DIGITS
            or not _MIN_NUMBER_EXPONENT <= number.adjusted() <= _MAX_NUMBER_EXPONENT
        ):
            raise PoisonMessageError(f"{field}: numbers must fit DynamoDB's number range")
    return text
