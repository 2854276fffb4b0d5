"""The synthesized stack end to end on the embedded emulator: what the pipeline does with events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from audit_stack.local import LocalAuditPipeline
from tests.e2e.helpers import (
    audit_event_of,
    bodies,
    drain,
    queue_counts,
    queue_template,
    records_of,
)

pytestmark = pytest.mark.e2e

ITEM_FIELDS = {
    "record_hash",
    "writer_mac",
    "topic_arn",
    "subject",
    "subject_type",
    "event_key",
    "event_type_shard",
    "idempotent",
    "event_type",
    "event_id",
    "occurred_at",
    "schema_version",
    "source",
    "details",
    "recorded_at",
    "sns_message_id",
}


def test_published_account_deletion_is_recorded_with_every_field(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline

    published = pipeline.invoke("publisher", {"email": "John.Doe@mail.com"})
    pipeline.run_until_idle()

    (item,) = records_of(pipeline, "john.doe@mail.com")
    assert set(item) == ITEM_FIELDS
    assert item["event_id"] == {"S": published["event_id"]}
    assert item["event_type"] == {"S": "AccountDeleted"}
    assert item["occurred_at"] == {"S": published["occurred_at"]}
    assert item["event_key"] == {"S": f"{published['occurred_at']}#{published['event_id']}"}
    assert item["details"] == {"M": {}}
    assert item["subject_type"] == {"S": "hmac-sha256"}
    assert item["topic_arn"] == {"S": pipeline.outputs["TopicArn"]}
    assert "john" not in json.dumps(item).lower()
    assert queue_counts(pipeline, "QueueUrl") == (0, 0)
    assert queue_counts(pipeline, "DeadLetterQueueUrl") == (0, 0)


def test_recorder_gets_lambdas_sqs_event_format(local_audit_pipeline: LocalAuditPipeline) -> None:
    pipeline = local_audit_pipeline

    pipeline.invoke("publisher", {"email": "jane.roe@mail.com"})
    pipeline.run_until_idle()

    (invocation,) = pipeline.invocations("recorder")
    (record,) = invocation.event["Records"]
    assert list(record) == [
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    ]
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    # Raw delivery is off: the event type travels inside the SNS envelope, not as an SQS attribute.
    assert record["messageAttributes"] == {}
    assert record["eventSource"] == "aws:sqs"
    queue_arn = pipeline.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.outputs["QueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert record["eventSourceARN"] == queue_arn
    assert record["awsRegion"] == pipeline.region
    envelope = json.loads(record["body"])
    assert envelope["Type"] == "Notification"
    assert envelope["TopicArn"] == pipeline.outputs["TopicArn"]
    assert envelope["MessageAttributes"]["event_type"]["Value"] == "AccountDeleted"
    assert invocation.response == {"batchItemFailures": []}


def test_poison_message_reaches_dlq_after_max_receive_count_and_its_batch_is_recorded_once(
    local_audit_pipeline: LocalAuditPipeline, template_json: dict[str, Any]
) -> None:
    pipeline = local_audit_pipeline
    max_receive_count = queue_template(template_json, pipeline)["RedrivePolicy"]["maxReceiveCount"]
    poison = "this is not an SNS notification"

    # Paused like a disabled event source mapping, so that all three arrive in one batch.
    with pipeline.event_sources_paused():
        first = pipeline.invoke("publisher", {"email": "first.good@mail.com"})
        # Only the topic may send to the queue (its policy): the poison goes in as the emulator.
        pipeline.client("sqs", as_emulator=True).send_message(
            QueueUrl=pipeline.outputs["QueueUrl"], MessageBody=poison
        )
        second = pipeline.invoke("publisher", {"email": "second.good@mail.com"})
    pipeline.run_until_idle(timeout=60)

    deliveries = pipeline.invocations("recorder")
    assert poison in bodies(deliveries[0]) and len(bodies(deliveries[0])) == 3
    assert sum(poison in bodies(invocation) for invocation in deliveries) == max_receive_count
    receive_counts = [
        record["attributes"]["ApproximateReceiveCount"]
        for invocation in deliveries
        for record in invocation.event["Records"]
        if record["body"] == poison
    ]
    assert receive_counts == [str(count) for count in range(1, max_receive_count + 1)]
    for published, subject in ((first, "first.good@mail.com"), (second, "second.good@mail.com")):
        (item,) = records_of(pipeline, subject)
        assert item["event_id"] == {"S": published["event_id"]}
        delivered = [
            body
            for invocation in deliveries
            for body in bodies(invocation)
            if body != poison and audit_event_of(body)["event_id"] == published["event_id"]
        ]
        assert len(delivered) == 1
    assert [message["Body"] for message in drain(pipeline, "DeadLetterQueueUrl")] == [poison]
    assert queue_counts(pipeline, "QueueUrl") == (0, 0)


def test_same_event_delivered_twice_gives_one_record(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline
    published = pipeline.invoke("publisher", {"email": "twice@mail.com"})
    pipeline.run_until_idle()
    (first_delivery,) = pipeline.invocations("recorder")
    (envelope,) = bodies(first_delivery)

    # SQS delivering the same notification again, and the publisher's topic retrying the event.
    # SQS's own redelivery, played by the emulator (the queue policy admits only the topic).
    pipeline.client("sqs", as_emulator=True).send_message(
        QueueUrl=pipeline.outputs["QueueUrl"], MessageBody=envelope
    )
    # A granted producer's retry, played by the emulator (the topic admits only granted ones).
    pipeline.client("sns", as_emulator=True).publish(
        TopicArn=pipeline.outputs["TopicArn"],
        Message=json.loads(envelope)["Message"],
        MessageAttributes={"event_type": {"DataType": "String", "StringValue": "AccountDeleted"}},
    )
    pipeline.run_until_idle()

    (item,) = records_of(pipeline, "twice@mail.com")
    assert item["event_id"] == {"S": published["event_id"]}
    deliveries = pipeline.invocations("recorder")
    assert sum(len(bodies(invocation)) for invocation in deliveries) == 3
    assert all(invocation.response == {"batchItemFailures": []} for invocation in deliveries)
    assert queue_counts(pipeline, "DeadLetterQueueUrl") == (0, 0)


def test_event_redriven_from_dlq_after_the_table_recovers_is_recorded(
    local_audit_pipeline: LocalAuditPipeline, template_json: dict[str, Any]
) -> None:
    pipeline = local_audit_pipeline
    max_receive_count = queue_template(template_json, pipeline)["RedrivePolicy"]["maxReceiveCount"]

    # The table refuses the recorder's writes, as after a deployment that broke its role: a valid
    # event fails every delivery and ends up in the DLQ, where nothing is lost.
    with pipeline.inject_fault(
        "dynamodb:BatchExecuteStatement", error_code="AccessDeniedException"
    ):
        published = pipeline.invoke("publisher", {"email": "redrive@mail.com"})
        pipeline.run_until_idle(timeout=60)
        assert records_of(pipeline, "redrive@mail.com") == []
        assert queue_counts(pipeline, "DeadLetterQueueUrl") == (1, 0)
        failed = pipeline.invocations("recorder")
        assert len(failed) == max_receive_count
        assert all(len(invocation.response["batchItemFailures"]) == 1 for invocation in failed)

    # The cause is fixed: move the DLQ back to the queue (StartMessageMoveTask) and let it flow.
    assert pipeline.redrive_dlq() == 1
    pipeline.run_until_idle()

    (item,) = records_of(pipeline, "redrive@mail.com")
    assert item["event_id"] == {"S": published["event_id"]}
    assert queue_counts(pipeline, "DeadLetterQueueUrl") == (0, 0)
    assert queue_counts(pipeline, "QueueUrl") == (0, 0)
    dead_letter_arn = pipeline.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.outputs["DeadLetterQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    (task,) = pipeline.client("sqs").list_message_move_tasks(SourceArn=dead_letter_arn)["Results"]
    assert task["Status"] == "COMPLETED"
    assert (
        task["ApproximateNumberOfMessagesMoved"] == task["ApproximateNumberOfMessagesToMove"] == 1
    )


def test_event_type_filtered_out_by_the_subscription_never_reaches_the_recorder(
    local_audit_pipeline: LocalAuditPipeline, template_json: dict[str, Any]
) -> None:
    pipeline = local_audit_pipeline
    (subscription,) = [
        resource["Properties"]
        for resource in template_json["Resources"].values()
        if resource["Type"] == "AWS::SNS::Subscription"
    ]
    ((attribute, allowed),) = subscription["FilterPolicy"].items()
    filtered_type = "Not" + "".join(allowed)
    filtered_body = json.dumps({"marker": "must never be delivered"})

    # A granted producer publishing a type off the catalogue, played by the emulator.
    pipeline.client("sns", as_emulator=True).publish(
        TopicArn=pipeline.outputs["TopicArn"],
        Message=filtered_body,
        MessageAttributes={attribute: {"DataType": "String", "StringValue": filtered_type}},
    )
    # Published after the filtered one, through the same topic: proves the path is open.
    control = pipeline.invoke("publisher", {"email": "control@mail.com"})
    pipeline.run_until_idle()

    delivered = [
        body for invocation in pipeline.invocations("recorder") for body in bodies(invocation)
    ]
    assert [audit_event_of(body)["event_id"] for body in delivered] == [control["event_id"]]
    assert queue_counts(pipeline, "DeadLetterQueueUrl") == (0, 0)


def test_plain_boto3_invoke_reports_a_rejected_payload_as_function_error(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline
    response = pipeline.client("lambda").invoke(
        FunctionName=pipeline.outputs["PublisherFunctionName"],
        Payload=json.dumps({"email": "not-an-address"}).encode(),
    )

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "InvalidPayloadError"
    assert error["errorMessage"].startswith("email:")
    assert {"requestId", "stackTrace"} <= set(error)
    assert queue_counts(pipeline, "QueueUrl") == (0, 0)


def test_pytest_plugin_opt_in_uses_the_suites_cloud_assembly(
    cloud_assembly: Path, tmp_path: Path
) -> None:
    """A user's suite: pytest_plugins in its conftest plus its own cloud_assembly fixture."""
    (tmp_path / "conftest.py").write_text(
        'import pytest\n\npytest_plugins = ["audit_stack.local.pytest_plugin"]\n\n\n'
        "@pytest.fixture(scope='session')\n"
        f"def cloud_assembly():\n    return {str(cloud_assembly)!r}\n"
    )
    (tmp_path / "test_user.py").write_text(
        "def test_publish(local_audit_pipeline):\n"
        "    result = local_audit_pipeline.invoke('publisher', {'email': 'user@mail.com'})\n"
        "    local_audit_pipeline.run_until_idle()\n"
        "    assert result['event_type'] == 'AccountDeleted'\n"
    )
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "1 passed" in completed.stdout
