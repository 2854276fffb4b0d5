"""A clear producer's idempotent event on the emulator with IAM enforced: recorded once under
its keyed id by the recorder's own role, and a retry of one recorded under the producer's unkeyed
id is a duplicate. Its own module: it runs its own emulator (one per process at a time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit_stack.lambda_code import audit_events_module, contract
from audit_stack.local import LocalAuditPipeline
from tests.cli.helpers import depth

pytestmark = pytest.mark.e2e


def test_a_clear_producers_idempotent_event_is_recorded_once_under_its_keyed_id_on_the_emulator(
    cloud_assembly: Path,
) -> None:
    """With IAM enforced, the recorder's own role (PutItem and ConditionCheckItem on the table)
    records a clear producer's event once under its keyed id, whatever the retries, and takes a
    retry of one recorded under its unkeyed id (before the re-keying) for a duplicate."""
    build = audit_events_module("event").build_account_deleted_event
    items = audit_events_module("items")
    subject = audit_events_module("subject")
    payload = {"email": "clear.retries@mail.example", "idempotency_key": "req-1"}
    legacy = {"email": "clear.legacy@mail.example", "idempotency_key": "req-2"}
    now = datetime.now(UTC)
    legacy_event = build(legacy, secret=None, now=now - timedelta(days=1))
    with LocalAuditPipeline(cloud_assembly, enforce_iam=True) as enforced:
        dynamodb = enforced.client("dynamodb", as_emulator=True)
        dynamodb.put_item(
            TableName=enforced.table_name, Item=items.to_idempotency_marker(legacy_event)
        )
        for seconds in (0, 1, 2):
            for sent in (payload, legacy):
                event = build(sent, secret=None, now=now + timedelta(seconds=seconds))
                enforced.client("sns", as_emulator=True).publish(
                    TopicArn=enforced.topic_arn,
                    Message=event.to_json(),
                    MessageAttributes={
                        contract.EVENT_TYPE_ATTRIBUTE: {
                            "DataType": "String",
                            "StringValue": contract.ACCOUNT_DELETED,
                        }
                    },
                )
        enforced.run_until_idle()
        secret = enforced.client("secretsmanager", as_emulator=True).get_secret_value(
            SecretId=enforced.outputs["PseudonymSecretArn"]
        )["SecretString"]
        stored = dynamodb.scan(TableName=enforced.table_name)["Items"]
        dead = depth(enforced, "DeadLetterQueueUrl")

    unkeyed = build(payload, secret=None, now=now).event_id
    keyed = subject.rekeyed_event_id(unkeyed, secret.encode())
    assert sorted(item["event_id"]["S"] for item in stored) == sorted(
        [keyed, keyed, legacy_event.event_id]  # the event and its marker; the old marker
    )
    assert unkeyed not in str(stored)
    assert dead == (0, 0)
