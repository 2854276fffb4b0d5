"""The deleteAccount Lambda: validates ``{"email": ...}`` and publishes an AccountDeleted event.

Reads TOPIC_ARN (where to publish), PSEUDONYM_SECRET_ARN (the secret that keys subject
pseudonyms) unless SUBJECT_IN_CLEAR is ``true``, and POWERTOOLS_SERVICE_NAME /
POWERTOOLS_LOG_LEVEL (logging). By default the e-mail never leaves this function: the event
names the account by its keyed pseudonym. It is never logged and never returned. The event and
its SNS message are built by ``publication.py``, as for applications that publish directly.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from .clients import client, pseudonym_secret
from .contract import (
    ENV_PSEUDONYM_SECRET_ARN,
    ENV_SUBJECT_IN_CLEAR,
    ENV_TOPIC_ARN,
    SUBJECT_IN_CLEAR_ON,
)
from .event import InvalidPayloadError, parse_delete_account_request
from .publication import account_deleted_publication

logger = Logger()


def _remaining_seconds(context: LambdaContext) -> float:
    return context.get_remaining_time_in_millis() / 1000


# log_event=False even if POWERTOOLS_LOGGER_LOG_EVENT is set: the payload holds the e-mail.
@logger.inject_lambda_context(log_event=False)
def handler(event: object, context: LambdaContext) -> dict[str, str]:
    """Publish one AccountDeleted event; an invalid payload raises and publishes nothing."""
    topic_arn = os.environ[ENV_TOPIC_ARN]
    try:
        # Before any AWS call: bad input costs nothing and is told apart from an outage.
        parse_delete_account_request(event)
    except InvalidPayloadError as error:
        # The error names the field and the rule, never the value.
        logger.warning("Rejected deleteAccount payload", extra={"reason": str(error)})
        raise
    in_clear = os.environ.get(ENV_SUBJECT_IN_CLEAR) == SUBJECT_IN_CLEAR_ON
    # Fails closed: without the opt-in, a missing secret is an error, never a clear address.
    secret = (
        None
        if in_clear
        else pseudonym_secret(os.environ[ENV_PSEUDONYM_SECRET_ARN], _remaining_seconds(context))
    )
    publication = account_deleted_publication(event, now=datetime.now(UTC), secret=secret)
    audit_event = publication.event
    response = client("sns", _remaining_seconds(context)).publish(
        TopicArn=topic_arn,
        Message=publication.message,
        MessageAttributes=publication.message_attributes,
    )
    logger.info(
        "Published audit event",
        extra={
            "event_id": audit_event.event_id,
            "event_type": audit_event.event_type,
            "idempotent": audit_event.idempotent,
            "sns_message_id": response["MessageId"],
        },
    )
    return {
        "event_id": audit_event.event_id,
        "event_type": audit_event.event_type,
        "occurred_at": audit_event.occurred_at,
    }
