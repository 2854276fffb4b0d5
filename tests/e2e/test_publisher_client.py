"""AuditPublisher against the emulator: events published straight to the topic are recorded like
the publisher function's, PublishBatch sends 10 per request, nothing is lost."""

from __future__ import annotations

import pytest

from audit_stack import discovery
from audit_stack.local import LocalAuditPipeline
from audit_stack.publisher import AuditPublisher, InvalidPayloadError
from tests.e2e.helpers import queue_counts, records_of


def _publisher(pipeline: LocalAuditPipeline) -> AuditPublisher:
    return AuditPublisher(
        pipeline.topic_arn,
        pseudonym_secret_arn=pipeline.resource_name(discovery.PSEUDONYM_SECRET),
        # A publisher granted grant_publish and grant_lookup: the stack grants no such role, so
        # the client calls as the emulator (IAM is tested in test_iam_enforcement.py).
        sns_client=pipeline.client("sns", as_emulator=True),
        secrets_client=pipeline.client("secretsmanager", as_emulator=True),
    )


def test_an_event_from_the_client_is_recorded_like_one_from_the_publisher_function(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    from_client = _publisher(local_audit_pipeline).account_deleted("client.user@mail.com")
    from_function = local_audit_pipeline.invoke("publisher", {"email": "function.user@mail.com"})
    local_audit_pipeline.run_until_idle()

    (client_record,) = records_of(local_audit_pipeline, "client.user@mail.com")
    (function_record,) = records_of(local_audit_pipeline, "function.user@mail.com")
    assert client_record["event_id"] == {"S": from_client.event_id}
    assert function_record["event_id"] == {"S": from_function["event_id"]}
    assert sorted(client_record) == sorted(function_record)
    for same in ("event_type", "source", "schema_version"):
        assert client_record[same] == function_record[same]
    assert client_record["sns_message_id"] == {"S": from_client.sns_message_id}


def test_an_invalid_email_is_refused_and_nothing_reaches_the_queue(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    with pytest.raises(InvalidPayloadError, match="email: must be a valid email address"):
        _publisher(local_audit_pipeline).account_deleted("not-an-address")
    assert local_audit_pipeline.instrumentation.count("sns:Publish") == 0
    assert queue_counts(local_audit_pipeline, "QueueUrl") == (0, 0)


def test_publish_many_sends_ten_per_request_and_every_event_is_recorded(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    emails = [f"bulk{i}@mail.com" for i in range(25)]
    published = _publisher(local_audit_pipeline).publish_many({"email": e} for e in emails)
    local_audit_pipeline.run_until_idle()

    assert local_audit_pipeline.instrumentation.count("sns:PublishBatch") == 3
    recorded = {
        email: [item["event_id"]["S"] for item in records_of(local_audit_pipeline, email)]
        for email in emails
    }
    assert recorded == {
        email: [event.event_id] for email, event in zip(emails, published, strict=True)
    }
