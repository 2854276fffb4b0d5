"""The original Serverless solution's two functions, as the benchmark's baseline (not project code).

Written the way the original is configured: module-level clients, the publisher sends the e-mail
with a timestamp, and the recorder writes one unconditional PutItem per message with no partial
batch response (its event source delivers one message per invocation).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import boto3

# Created at import time, as Serverless examples do: part of each cold start.
sns = boto3.client("sns")
table = boto3.resource("dynamodb").Table(os.environ.get("TABLE_NAME", "unset"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def delete_account(event: dict[str, Any], context: object) -> dict[str, Any]:
    """deleteAccount: publish the deleted account's e-mail to the topic."""
    message = {"email": event["email"], "deletedAt": _now()}
    response = sns.publish(TopicArn=os.environ["TOPIC_ARN"], Message=json.dumps(message))
    return {"statusCode": 200, "messageId": response["MessageId"]}


def record_deleted_account_info(event: dict[str, Any], context: object) -> None:
    """recordDeletedAccountInfo: write each message's e-mail to the table; any error fails all."""
    for record in event["Records"]:
        envelope = json.loads(record["body"])
        message = json.loads(envelope["Message"])
        table.put_item(
            Item={
                "id": envelope["MessageId"],
                "email": message["email"],
                "deletedAt": message["deletedAt"],
                "recordedAt": _now(),
            }
        )
