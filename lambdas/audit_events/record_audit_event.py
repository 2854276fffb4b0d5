"""The recordDeletedAccountInfo Lambda: writes audit events from the queue to the table, once each.

Reads TABLE_NAME, TOPIC_ARN (the one topic whose SNS-signed notifications it accepts),
EVENT_TYPE_INDEX_SHARDS (0: no by-type index), RETENTION_DAYS (when set, each
item gets ``expires_at`` = ``recorded_at`` + that many days, DynamoDB's TTL attribute),
PSEUDONYM_SECRET_ARN (when set, events that name their subject by e-mail address, such as
version 1 messages still in the queues, are recorded under the address's pseudonym),
WRITER_KEY_SECRET_ARN (when set, each item gets ``writer_mac``: the proof the sealer asks
for), POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL and POWERTOOLS_METRICS_NAMESPACE.

A message is recorded only if SNS signed it for TOPIC_ARN (``sns_signature.py``); anything else
(a direct invoke with a hand-made event, a forged envelope sent to the queue) is poison and
counted as UnverifiedMessages.

Every item it writes reaches the sealer through the table's DynamoDB stream, which signs it
into the digest chain (``integrity.py``): the recorder sends nothing else.

Reads EVENT_CATALOGUE too: an event whose type is not in the pipeline's catalogue, or whose
details break its type's schema, is poison (the queue's redrive policy moves it to the DLQ).
The items written are ``items.py``'s.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from .catalogue import EventCatalogue, EventRuleError, parse_catalogue
from .clients import OutOfTimeError, client, pseudonym_secret, secret_bytes
from .contract import (
    ENV_EVENT_CATALOGUE,
    ENV_EVENT_TYPE_INDEX_SHARDS,
    ENV_PSEUDONYM_SECRET_ARN,
    ENV_RETENTION_DAYS,
    ENV_TABLE_NAME,
    ENV_TOPIC_ARN,
    ENV_WRITER_KEY_SECRET_ARN,
    METRIC_DUPLICATES_SKIPPED,
    METRIC_EVENTS_RECORDED,
    METRIC_POISON_MESSAGES,
    METRIC_UNVERIFIED_MESSAGES,
    PARTITION_KEY,
    RECORD_HASH_ATTRIBUTE,
    RECORDED_AT_ATTRIBUTE,
    SORT_KEY,
    SUBJECT_TYPE_EMAIL,
    SUBJECT_TYPE_IDENTIFIER,
    WRITER_MAC_ATTRIBUTE,
)
from .event import PoisonMessageError, format_timestamp, parse_sns_envelope, pseudonymize
from .integrity import writer_mac
from .items import (
    expires_at,
    idempotency_marker_key,
    insert_statement,
    to_idempotency_marker,
    to_item,
)
from .sns_signature import UnverifiedMessageError, verify_notification

# A record needs at least this much of the invocation left, or it is handed back to SQS unread
# rather than risking the whole batch on the function timeout.
MIN_SECONDS_PER_RECORD = 0.5
# DynamoDB writes in flight at once per invocation: enough to hide a batch of 10's latency,
# few enough that the threads and their connections stay cheap in a small function.
MAX_CONCURRENT_WRITES = 8
# BatchExecuteStatement's limit: statements per request.
MAX_STATEMENTS_PER_CALL = 25
# An INSERT whose key exists: DynamoDB's BatchStatementError code, and the condition failure
# code a PutItem would give (accepted too: either means "already recorded").
_DUPLICATE_CODES = frozenset({"DuplicateItem", "ConditionalCheckFailed"})

logger = Logger()
metrics = Metrics()


@dataclass(frozen=True)
class _Settings:
    table_name: str
    topic_arn: str
    event_type_shards: int
    secret_arn: str | None
    catalogue: EventCatalogue | None
    """The pipeline's event types; None (no EVENT_CATALOGUE) records every type delivered."""
    retention_days: int | None = None
    """Days each record is kept (DynamoDB TTL); None: for the life of the table."""
    writer_key_arn: str | None = None
    """The writer key's secret; None: items carry no writer MAC (a pipeline without one)."""


_write_pool: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """The writers' threads: one pool per execution environment, reused by every batch."""
    global _write_pool
    if _write_pool is None:
        _write_pool = ThreadPoolExecutor(
            max_workers=MAX_CONCURRENT_WRITES, thread_name_prefix="audit-write"
        )
    return _write_pool


@lru_cache(maxsize=4)
def _catalogue(text: str) -> EventCatalogue:
    # Parsed (and its schemas compiled) once per execution environment.
    return parse_catalogue(text)


@dataclass
class _BatchCounts:
    recorded: int = 0
    duplicates: int = 0
    poison: int = 0
    unverified: int = 0


def utc_now() -> datetime:
    """The clock ``recorded_at`` is read from (a seam: tests replace it to fix the time)."""
    return datetime.now(UTC)


# log_event=False even if POWERTOOLS_LOGGER_LOG_EVENT is set: the records hold personal data.
@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Record each SQS record's event; failed records are returned as batchItemFailures.

    The response is built here from each message's result, in delivery order (the writes of a
    batch run together first, see ``_write_batch``): a message fails if it is poison or its
    write failed. Even a batch of only failures is answered with
    its failed items, never with an error that hides which messages failed.
    """
    catalogue_text = os.environ.get(ENV_EVENT_CATALOGUE)
    settings = _Settings(
        table_name=os.environ[ENV_TABLE_NAME],
        topic_arn=os.environ[ENV_TOPIC_ARN],
        event_type_shards=int(os.environ.get(ENV_EVENT_TYPE_INDEX_SHARDS, "0")),
        secret_arn=os.environ.get(ENV_PSEUDONYM_SECRET_ARN) or None,
        catalogue=_catalogue(catalogue_text) if catalogue_text else None,
        retention_days=_retention_days(os.environ.get(ENV_RETENTION_DAYS)),
        writer_key_arn=os.environ.get(ENV_WRITER_KEY_SECRET_ARN) or None,
    )
    records = [SQSRecord(raw) for raw in event.get("Records", [])]
    results = _write_batch(records, settings=settings, context=context)
    counts = _BatchCounts()
    failed = [
        record.message_id
        for record, result in zip(records, results, strict=True)
        if not _account(record, result, counts)
    ]
    # Emitted even when zero, so dashboards and alarms see "none" rather than "no data".
    metrics.add_metric(name=METRIC_EVENTS_RECORDED, unit=MetricUnit.Count, value=counts.recorded)
    metrics.add_metric(
        name=METRIC_DUPLICATES_SKIPPED, unit=MetricUnit.Count, value=counts.duplicates
    )
    metrics.add_metric(name=METRIC_POISON_MESSAGES, unit=MetricUnit.Count, value=counts.poison)
    metrics.add_metric(
        name=METRIC_UNVERIFIED_MESSAGES, unit=MetricUnit.Count, value=counts.unverified
    )
    # CloudWatch Logs bills by the byte: a batch recorded in full is in the metric line alone
    # (its summary at DEBUG); one with duplicates, poison or failures also gets this line,
    # after the WARNING or ERROR line of each message that was not recorded.
    clean = counts.recorded == len(records)
    (logger.debug if clean else logger.info)(
        "Batch processed",
        extra={
            "recorded": counts.recorded,
            "duplicates": counts.duplicates,
            "poison": counts.poison,
            "unverified": counts.unverified,
            "failed": len(failed),
        },
    )
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _retention_days(text: str | None) -> int | None:
    # Set by the construct (whole days, validated there); a bad value fails every batch, loudly.
    return int(text) if text else None


def _remaining_seconds(context: LambdaContext) -> float:
    return context.get_remaining_time_in_millis() / 1000


@dataclass(frozen=True)
class _Write:
    """One message's prepared write: its items (an idempotent event's marker first)."""

    message_id: str
    idempotent: bool
    items: list[dict[str, Any]]
    log_keys: dict[str, str]
    legacy_marker: dict[str, Any] | None = None
    """The marker key of the id a clear producer gave an event that is recorded re-keyed:
    a retry of it recorded before the re-keying is still a duplicate."""

    @property
    def contended_key(self) -> tuple[str, str]:
        """The key two deliveries of the same event both write (the marker's, if any)."""
        first = self.items[0]
        return first[PARTITION_KEY]["S"], first[SORT_KEY]["S"]


@dataclass(frozen=True)
class _Outcome:
    """What one message's write did: recorded, or found already recorded (a duplicate)."""

    duplicate: bool


# A message's result: its outcome, or the error that makes it a batch item failure.
_Result = _Outcome | Exception
# Subjects in clear, recorded under their pseudonym by a pipeline that has the secret.
_IN_CLEAR = (SUBJECT_TYPE_EMAIL, SUBJECT_TYPE_IDENTIFIER)


def _prepare(record: SQSRecord, *, settings: _Settings, context: LambdaContext) -> _Write:
    """Parse one SQS message into the items to write; raises PoisonMessageError for bad input."""
    if _remaining_seconds(context) < MIN_SECONDS_PER_RECORD:
        raise OutOfTimeError("too little of the invocation left; SQS will redeliver")
    # Only what SNS signed for our topic is read at all (a direct invoke is not).
    verify_notification(
        record.body, topic_arn=settings.topic_arn, timeout_seconds=_remaining_seconds(context)
    )
    event, provenance = parse_sns_envelope(record.body)
    if settings.catalogue is not None:
        try:
            settings.catalogue.check(event.event_type, event.details)
        except EventRuleError as error:
            raise PoisonMessageError(str(error)) from None
    published_id = event.event_id
    if settings.secret_arn is not None and event.subject_type in _IN_CLEAR:
        # An address in clear (a version 1 message, a clear producer) is not recorded.
        secret = pseudonym_secret(settings.secret_arn, _remaining_seconds(context))
        personal = (
            settings.catalogue.personal_fields(event.event_type) if settings.catalogue else ()
        )
        event = pseudonymize(event, secret, personal)
    now = utc_now()
    expiry = expires_at(now, settings.retention_days)
    item = to_item(
        event,
        provenance,
        recorded_at=format_timestamp(now),
        event_type_shards=settings.event_type_shards,
        expires_at=expiry,
    )
    items = (
        [
            to_idempotency_marker(
                event, recorded_at=item[RECORDED_AT_ATTRIBUTE]["S"], expires_at=expiry
            ),
            item,
        ]
        if event.idempotent
        else [item]
    )
    if settings.writer_key_arn is not None:
        key = secret_bytes(settings.writer_key_arn, _remaining_seconds(context))
        items = [
            {
                **written,
                WRITER_MAC_ATTRIBUTE: {"S": writer_mac(key, written[RECORD_HASH_ATTRIBUTE]["S"])},
            }
            for written in items
        ]
    return _Write(
        message_id=record.message_id,
        idempotent=event.idempotent,
        items=items,
        legacy_marker=(
            idempotency_marker_key(published_id) if event.event_id != published_id else None
        ),
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
    try:
        if write.idempotent:
            # One transaction: the event and its marker, or neither. A retry of the caller has
            # the same event id but another time (another key): the marker catches it.
            transaction: list[dict[str, Any]] = [
                {
                    "Put": {
                        "TableName": table_name,
                        "Item": written_item,
                        "ConditionExpression": only_once,
                    }
                }
                for written_item in write.items
            ]
            if write.legacy_marker is not None:
                # The id its producer published it with, recorded before ids were re-keyed.
                transaction.append(
                    {
                        "ConditionCheck": {
                            "TableName": table_name,
                            "Key": write.legacy_marker,
                            "ConditionExpression": only_once,
                        }
                    }
                )
            dynamodb.transact_write_items(TransactItems=transaction)
        else:
            dynamodb.put_item(
                TableName=table_name,
                Item=write.items[0],
                ConditionExpression=only_once,
            )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code == "ConditionalCheckFailedException" or _condition_cancelled(error):
            return _Outcome(duplicate=True)
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
    return _Outcome(duplicate=False)


def _write_in_order(
    writes: list[_Write], *, table_name: str, context: LambdaContext
) -> list[_Result]:
    """Write messages that contend for one key one after another, in delivery order."""
    results: list[_Result] = []
    for write in writes:
        try:
            results.append(_write(write, table_name=table_name, context=context))
        # Any error fails this message only: it becomes its result.
        except Exception as error:
            results.append(error)
    return results


def _insert_all(writes: list[_Write], *, table_name: str, context: LambdaContext) -> list[_Result]:
    """Store the first write of every key that has no marker: one ``BatchExecuteStatement`` of
    PartiQL INSERTs per MAX_STATEMENTS_PER_CALL, each statement answered on its own.

    An INSERT stores its item only if the key is new (``DuplicateItem`` otherwise: a
    redelivery), so each event is still written once, at PutItem's cost in write units, and one
    request carries the whole batch: the SDK's CPU per request (signing, HTTP, parsing) is
    spent once per batch rather than once per event.
    """
    if _remaining_seconds(context) < MIN_SECONDS_PER_RECORD:
        late = OutOfTimeError("too little of the invocation left; SQS will redeliver")
        return [late for _ in writes]
    dynamodb = client("dynamodb", _remaining_seconds(context))
    results: list[_Result] = []
    for first in range(0, len(writes), MAX_STATEMENTS_PER_CALL):
        chunk = writes[first : first + MAX_STATEMENTS_PER_CALL]
        try:
            answers = dynamodb.batch_execute_statement(
                Statements=[insert_statement(table_name, write.items[0]) for write in chunk]
            )["Responses"]
        except (ClientError, BotoCoreError) as error:  # no answer for any of them: all retried
            code = (
                error.response.get("Error", {}).get("Code")
                if isinstance(error, ClientError)
                else type(error).__name__
            )
            logger.warning(
                "Write failed; SQS will redeliver",
                extra={"messages": len(chunk), "error_code": code},
            )
            results.extend(error for _ in chunk)
            continue
        results.extend(
            _statement_result(write, answer) for write, answer in zip(chunk, answers, strict=True)
        )
    return results


def _statement_result(write: _Write, answer: dict[str, Any]) -> _Result:
    """One INSERT's answer: recorded, already recorded, or an error for SQS to retry."""
    error = answer.get("Error")
    if error is None:
        return _Outcome(duplicate=False)
    code = error.get("Code")
    if code in _DUPLICATE_CODES:
        return _Outcome(duplicate=True)
    logger.warning("Write failed; SQS will redeliver", extra={**write.log_keys, "error_code": code})
    # Shaped like the SDK's own errors, so that the batch response treats it as one.
    failed: Exception = ClientError(
        {"Error": {"Code": code, "Message": error.get("Message", "")}}, "BatchExecuteStatement"
    )
    return failed


def _write_batch(
    records: list[SQSRecord], *, settings: _Settings, context: LambdaContext
) -> list[_Result]:
    """Every message's result, in delivery order.

    Parsing is CPU work and runs first, in order. Then the first message of each key is written:
    the plain events together in one request (``_insert_all``); events with an idempotency
    marker each in its own transaction, overlapping (each waits mostly on DynamoDB, so a batch
    costs about one write's latency per MAX_CONCURRENT_WRITES of them). Further messages writing
    the same key (a duplicate delivery in one batch) follow in delivery order, after the first,
    so exactly one of them records the event.
    """
    prepared: list[_Write | Exception] = []
    for record in records:
        try:
            prepared.append(_prepare(record, settings=settings, context=context))
        # Any error fails this message only: it is answered as a batch item failure.
        except Exception as error:
            prepared.append(error)
    by_key: dict[tuple[str, str], list[_Write]] = {}
    for found in prepared:
        if isinstance(found, _Write):
            by_key.setdefault(found.contended_key, []).append(found)
    inserts = [group[0] for group in by_key.values() if not group[0].idempotent]
    written: dict[int, _Result] = {}
    if inserts:
        inserted = _insert_all(inserts, table_name=settings.table_name, context=context)
        written.update(zip(map(id, inserts), inserted, strict=True))
    groups = [[write for write in group if id(write) not in written] for group in by_key.values()]
    groups = [group for group in groups if group]
    write_group = partial(_write_in_order, table_name=settings.table_name, context=context)
    if len(groups) <= 1:
        outcomes = [write_group(group) for group in groups]
    else:
        # The client is made here, once, before the threads: left to them, a new environment's
        # first batch raced the client cache and built one client per thread.
        client("dynamodb", _remaining_seconds(context))
        # Bounded by the remaining time too: every write checks it before starting and its
        # client's retries end within it, so the writes are done before the function times out.
        outcomes = list(_pool().map(write_group, groups))
    for group, group_results in zip(groups, outcomes, strict=True):
        written.update(zip(map(id, group), group_results, strict=True))
    return [written[id(found)] if isinstance(found, _Write) else found for found in prepared]


def _account(record: SQSRecord, result: _Result, counts: _BatchCounts) -> bool:
    """Count one message's result; False if it is a batch item failure (SQS retries it)."""
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
        return False
    if isinstance(result, Exception):
        if not isinstance(result, ClientError | BotoCoreError):
            # Write failures were logged where they happened; anything else is logged here.
            logger.warning(
                "Message not recorded; SQS will redeliver",
                extra={"sqs_message_id": record.message_id, "error": type(result).__name__},
            )
        return False
    if result.duplicate:
        counts.duplicates += 1
    else:
        counts.recorded += 1
    return True


def _condition_cancelled(error: ClientError) -> bool:
    """A transaction cancelled only because a condition failed: the marker already exists."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons", [])
    codes = {reason.get("Code") for reason in reasons} - {"None", None}
    return bool(codes) and codes <= {"ConditionalCheckFailed"}
