"""On the emulator: the recorder records only what the emulator's SNS signed for its topic; a
direct invoke with a hand-made event, or a forged envelope sent to the queue, is refused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from audit_stack.local import LocalAuditPipeline
from tests.e2e.helpers import bodies, queue_counts, records_of

pytestmark = pytest.mark.e2e


def _v1_event(email: str) -> str:
    now = datetime.now(UTC)
    return json.dumps(
        {
            "schema_version": 1,
            "event_id": str(uuid.uuid4()),
            "event_type": "AccountDeleted",
            "occurred_at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "subject": email,
            "source": "deleteAccount",
            "details": {"email": email},
        }
    )


def _sqs_event(body: str, queue_arn: str) -> dict[str, Any]:
    """A hand-made SQS event as the event source would build it."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": uuid.uuid4().hex,
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
        ]
    }


def _unverified_count(logs: list[str]) -> float:
    total = 0.0
    for line in logs:
        if line.startswith("{") and '"UnverifiedMessages"' in line:
            value = json.loads(line)["UnverifiedMessages"]
            total += sum(value) if isinstance(value, list) else value
    return total


def test_emulator_deliveries_are_signed_v2_with_its_served_certificate_and_recorded_with_topic_arn(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline

    pipeline.invoke("publisher", {"email": "signed.delivery@mail.com"})
    pipeline.run_until_idle()

    (invocation,) = pipeline.invocations("recorder")[-1:]
    (body,) = bodies(invocation)
    envelope = json.loads(body)
    assert envelope["SignatureVersion"] == "2"
    assert envelope["SigningCertURL"] == pipeline.sns_signer.cert_url
    assert envelope["SigningCertURL"].startswith(f"{pipeline.endpoint_url}/_emulator/sns/")
    # Served on the loopback endpoint, as SNS serves its certificates.
    with urllib.request.urlopen(envelope["SigningCertURL"], timeout=10) as response:
        assert response.read() == pipeline.sns_signer.certificate_pem
    (item,) = records_of(pipeline, "signed.delivery@mail.com")
    assert item["topic_arn"] == {"S": pipeline.outputs["TopicArn"]}


def test_direct_invoke_with_a_hand_made_event_is_refused_counted_and_not_recorded(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline
    queue_arn = pipeline.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.outputs["QueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    forged = json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": pipeline.outputs["TopicArn"],
            "Message": _v1_event("forged.invoke@mail.com"),
            "Timestamp": "2020-01-01T00:00:00.000Z",
            "SignatureVersion": "2",
            "Signature": "Zm9yZ2Vk",
            "SigningCertURL": "https://attacker.example/SimpleNotificationService-1.pem",
        }
    )
    event = _sqs_event(forged, queue_arn)
    invocations_before = len(pipeline.invocations("recorder"))

    response = pipeline.invoke("recorder", event)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert records_of(pipeline, "forged.invoke@mail.com") == []
    (invocation,) = pipeline.invocations("recorder")[invocations_before:]
    assert _unverified_count(list(invocation.logs)) == 1
    assert any(
        "SigningCertURL: must be https://sns.us-east-1.amazonaws.com/" in line
        for line in invocation.logs
    )


def test_envelope_signed_by_the_emulator_but_tampered_in_the_queue_ends_in_the_dlq(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline
    genuine = json.loads(pipeline.signed_notification(_v1_event("tampered@mail.com")))
    tampered = {**genuine, "Message": _v1_event("someone.else@mail.com")}
    pipeline.client("sqs").send_message(
        QueueUrl=pipeline.outputs["QueueUrl"], MessageBody=json.dumps(tampered)
    )

    pipeline.run_until_idle(timeout=60)

    assert records_of(pipeline, "someone.else@mail.com") == []
    assert queue_counts(pipeline, "DeadLetterQueueUrl") == (1, 0)


def test_signed_notification_helper_makes_a_body_the_recorder_records(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline
    pipeline.client("sqs").send_message(
        QueueUrl=pipeline.outputs["QueueUrl"],
        MessageBody=pipeline.signed_notification(_v1_event("helper.signed@mail.com")),
    )

    pipeline.run_until_idle(timeout=60)

    (item,) = records_of(pipeline, "helper.signed@mail.com")
    assert item["topic_arn"] == {"S": pipeline.outputs["TopicArn"]}


def _readme_rehearsal() -> str:
    """The README walkthrough's Python snippet that puts a signed notification into the DLQ."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("python - <<'EOF'\n", readme.index("# 2. An incident"))
    body_start = readme.index("\n", start) + 1
    return readme[body_start : readme.index("\nEOF\n", body_start)]


def test_the_readme_dlq_rehearsal_puts_a_signed_notification_the_recorder_records_on_redrive(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline
    snippet = _readme_rehearsal().replace("http://127.0.0.1:4599", pipeline.endpoint_url)
    assert pipeline.endpoint_url in snippet

    exec(compile(snippet, "README.md", "exec"), {})

    assert queue_counts(pipeline, "DeadLetterQueueUrl") == (1, 0)
    assert pipeline.redrive_dlq() == 1
    pipeline.run_until_idle()
    (item,) = records_of(pipeline, "jane.roe@mail.com")
    assert item["topic_arn"] == {"S": pipeline.outputs["TopicArn"]}
    assert queue_counts(pipeline, "DeadLetterQueueUrl") == (0, 0)


def test_the_emulators_signing_helper_signs_only_for_its_own_topics(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    request = urllib.request.Request(
        f"{local_audit_pipeline.endpoint_url}/_emulator/sns/sign",
        method="POST",
        data=json.dumps(
            {"TopicArn": "arn:aws:sns:us-east-1:123456789012:nobody", "Message": "{}"}
        ).encode(),
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 404
