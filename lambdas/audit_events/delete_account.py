"""The deleteAccount Lambda: validates ``{"email": ...}`` and publishes an AccountDeleted event.

Reads TOPIC_ARN (where to publish) and POWERTOOLS_SERVICE_NAME / POWERTOOLS_LOG_LEVEL (logging).
The e-mail is personal data: it is published, but never logged and never returned.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from .event import InvalidPayloadError
from .publication import account_deleted_publication

# Fail within seconds rather than waiting out botocore's 60-second defaults: the function's own
# timeout is shorter, and the caller is told about an error instead of a timeout.
_CLIENT_CONFIG = Config(
    connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
)

logger = Logger()


@cache
def _sns_client() -> Any:
    # Created on first use, once per execution environment: importing the module stays cheap
    # and tests can create it inside their AWS mock.
    return boto3.client("sns", config=_CLIENT_CONFIG)


# log_event=False even if POWERTOOLS_LOGGER_LOG_EVENT is set: the payload holds the e-mail.
@logger.inject_lambda_context(log_event=False)
def handler(event: object, context: LambdaContext) -> dict[str, str]:
    """Publish one AccountDeleted event; an invalid payload raises and publishes nothing."""
    topic_arn = os.environ["TOPIC_ARN"]
    try:
        publication = account_deleted_publication(
            event, now=datetime.now(UTC), event_id=str(uuid.uuid4())
        )
    except InvalidPayloadError as error:
        # The error names the field and the rule, never the value.
        logger.warning("Rejected deleteAccount payload", extra={"reason": str(error)})
        raise
    audit_event = publication.event
    response = _sns_client().publish(
        TopicArn=topic_arn,
        Message=publication.message,
        MessageAttributes=publication.message_attributes,
    )
    logger.info(
        "Published audit event",
        extra={
            "event_id": audit_event.event_id,
            "event_type": audit_event.event_type,
            "sns_message_id": response["MessageId"],
        },
    )
    return {
        "event_id": audit_event.event_id,
        "event_type": audit_event.event_type,
        "occurred_at": audit_event.occurred_at,
    }
