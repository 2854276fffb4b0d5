"""The recordDeletedAccountInfo Lambda: writes audit events from the queue to the table, once each.

Reads TABLE_NAME, SEAL_QUEUE_URL, POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL and
POWERTOOLS_METRICS_NAMESPACE.

After a batch, the recorder reports every record it wrote (or found already written) to the seal
queue, which only its role may send to; the sealer signs those records into the digest chain
(``integrity.py``). A record whose report cannot be sent is returned as a batch item failure,
so SQS redelivers it and the report is sent again: nothing written goes unreported.

Table item, one per event (written once with PutItem, never updated or deleted):

==============  ====  ==========================================================================
attribute       type  meaning
==============  ====  ==========================================================================
subject         S     partition key: whom the event is about (AccountDeleted: the e-mail,
                      lower-cased)
event_key       S     sort key: ``<occurred_at>#<event_id>``, a subject's events in time order;
                      also the sort key of the ``by-event-type`` index
event_type      S     e.g. ``AccountDeleted``; partition key of the ``by-event-type`` index
event_id        S     lowercase UUID4 chosen by the publisher
occurred_at     S     when it happened, UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
schema_version  N     version of the event schema (1)
source          S     what published it, e.g. ``deleteAccount``
details         M     event-specific data (AccountDeleted: ``{"email": ...}``)
recorded_at     S     when this function wrote the item, same format as occurred_at
sns_message_id  S     MessageId of the SNS notification that delivered the event
record_hash     S     SHA-256 of the item's canonical content (``integrity.record_hash``)
==============  ====  ==========================================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache, partial
from typing import Any

import boto3
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
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .event import (
    AuditEvent,
    PoisonMessageError,
    SnsProvenance,
    format_timestamp,
    parse_sns_envelope,
)
from .integrity import (
    RECORD_HASH_ATTRIBUTE,
    RecordRef,
    notice_body,
    with_record_hash,
)

PARTITION_KEY = "subject"
SORT_KEY = "event_key"

RECORDED_METRIC = "AuditEventsRecorded"
DUPLICATE_METRIC = "DuplicateAuditEventsSkipped"
POISON_METRIC = "PoisonMessages"

# DynamoDB's documented limits; breaking one is a property of the message, so it is poison
# rather than an error worth retrying.
_MAX_PARTITION_KEY_BYTES = 2048
_MAX_NESTING_DEPTH = 32
_MAX_NUMBER_DIGITS = 38
_MIN_NUMBER_EXPONENT = -130
_MAX_NUMBER_EXPONENT = 125
# Records per seal notice: a notice stays far below SQS's 256 KiB message limit.
_RECORDS_PER_NOTICE = 200

# Fail a slow or throttled write within a few seconds: the record is then reported as a batch
# item failure and retried by SQS, instead of the whole batch running into the function timeout.
_CLIENT_CONFIG = Config(
    connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
)

logger = Logger()
metrics = Metrics()
# raise_on_entire_batch_failure=False: a batch of only poison messages must still be answered
# with its failed items, not with an error that hides which messages failed.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@dataclass
class _BatchCounts:
    recorded: int = 0
    duplicates: int = 0
    poison: int = 0
    written: list[tuple[str, RecordRef]] = field(default_factory=list)
    """(SQS message id, record) for every record this batch wrote or found already written."""


@cache
def _dynamodb_client() -> Any:
    # Created on first use, once per execution environment: importing the module stays cheap
    # and tests can create it inside their AWS mock.
    return boto3.client("dynamodb", config=_CLIENT_CONFIG)


@cache
def _sqs_client() -> Any:
    return boto3.client("sqs", config=_CLIENT_CONFIG)


def _utc_now() -> datetime:
    return datetime.now(UTC)


# log_event=False even if POWERTOOLS_LOGGER_LOG_EVENT is set: the records hold personal data.
@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Record each SQS record's event; failed records are returned as batchItemFailures."""
    table_name = os.environ["TABLE_NAME"]
    counts = _BatchCounts()
    response = process_partial_response(
        event=event,
        record_handler=partial(_record_message, table_name=table_name, counts=counts),
        processor=processor,
        context=context,
    )
    unreported = _report_for_sealing(os.environ["SEAL_QUEUE_URL"], counts.written)
    failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    response["batchItemFailures"].extend(
        {"itemIdentifier": message_id} for message_id in unreported if message_id not in failed
    )
    # Emitted even when zero, so dashboards and alarms see "none" rather than "no data".
    metrics.add_metric(name=RECORDED_METRIC, unit=MetricUnit.Count, value=counts.recorded)
    metrics.add_metric(name=DUPLICATE_METRIC, unit=MetricUnit.Count, value=counts.duplicates)
    metrics.add_metric(name=POISON_METRIC, unit=MetricUnit.Count, value=counts.poison)
    logger.info(
        "Batch processed",
        extra={
            "recorded": counts.recorded,
            "duplicates": counts.duplicates,
            "poison": counts.poison,
            "failed": len(response["batchItemFailures"]),
        },
    )
    return response


def _report_for_sealing(queue_url: str, written: list[tuple[str, RecordRef]]) -> list[str]:
    """Send the batch's records to the seal queue; the SQS message ids whose report failed."""
    unreported: list[str] = []
    for start in range(0, len(written), _RECORDS_PER_NOTICE):
        chunk = written[start : start + _RECORDS_PER_NOTICE]
        try:
            _sqs_client().send_message(
                QueueUrl=queue_url, MessageBody=notice_body(ref for _, ref in chunk)
            )
        except (ClientError, BotoCoreError) as error:
            logger.warning(
                "Seal notice not sent; SQS will redeliver its messages",
                extra={"records": len(chunk), "error_code": type(error).__name__},
            )
            unreported.extend(message_id for message_id, _ in chunk)
    return unreported


def _record_message(record: SQSRecord, *, table_name: str, counts: _BatchCounts) -> None:
    """Record one SQS message's event; raising makes it a batch item failure (SQS retries it)."""
    try:
        event, provenance = parse_sns_envelope(record.body)
        item = to_item(event, provenance, recorded_at=format_timestamp(_utc_now()))
    except PoisonMessageError as error:
        counts.poison += 1
        # After the queue's maxReceiveCount receives, SQS moves the message to the DLQ.
        logger.error(
            "Poison message",
            extra={
                "sqs_message_id": record.message_id,
                "receive_count": record.attributes.approximate_receive_count,
                "reason": str(error),
            },
        )
        raise
    log_keys = {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "sns_message_id": provenance.sns_message_id,
    }
    try:
        _dynamodb_client().put_item(
            TableName=table_name,
            Item=item,
            # Redeliveries are normal for SQS; the first write of an event is the record.
            ConditionExpression=f"attribute_not_exists({PARTITION_KEY})",
            # The stored item comes back on a duplicate, so its seal notice can be re-sent.
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code == "ConditionalCheckFailedException":
            counts.duplicates += 1
            logger.info("Duplicate delivery skipped; event already recorded", extra=log_keys)
            # The first delivery may have written the item and died before its notice was
            # sent; the sealer drops notices of records it has already sealed.
            stored = error.response.get("Item") or {}
            if RECORD_HASH_ATTRIBUTE in stored:
                counts.written.append((record.message_id, _record_ref(stored)))
            return
        logger.warning("Write failed; SQS will redeliver", extra={**log_keys, "error_code": code})
        raise
    except BotoCoreError as error:  # no answer from DynamoDB: timeouts, connection errors
        logger.warning(
            "Write failed; SQS will redeliver",
            extra={**log_keys, "error_code": type(error).__name__},
        )
        raise
    counts.recorded += 1
    counts.written.append((record.message_id, _record_ref(item)))
    logger.info("Recorded audit event", extra=log_keys)


def _record_ref(item: dict[str, Any]) -> RecordRef:
    return RecordRef(
        subject=item[PARTITION_KEY]["S"],
        event_key=item[SORT_KEY]["S"],
        record_hash=item[RECORD_HASH_ATTRIBUTE]["S"],
        recorded_at=item.get("recorded_at", {}).get("S", ""),
    )


def to_item(event: AuditEvent, provenance: SnsProvenance, *, recorded_at: str) -> dict[str, Any]:
    """The DynamoDB item (low-level attribute values) that records ``event``, with its hash."""
    subject = _text("subject", event.subject)
    if len(subject.encode("utf-8")) > _MAX_PARTITION_KEY_BYTES:
        raise PoisonMessageError(f"subject: must be at most {_MAX_PARTITION_KEY_BYTES} bytes")
    return with_record_hash(
        {
            PARTITION_KEY: {"S": subject},
            SORT_KEY: {"S": event.event_key},
            "event_type": {"S": event.event_type},
            "event_id": {"S": event.event_id},
            "occurred_at": {"S": event.occurred_at},
            "schema_version": {"N": str(event.schema_version)},
            "source": {"S": _text("source", event.source)},
            "details": _attribute_value("details", event.details, depth=1),
            "recorded_at": {"S": recorded_at},
            "sns_message_id": {"S": _text("sns_message_id", provenance.sns_message_id)},
        }
    )


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
