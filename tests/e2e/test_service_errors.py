"""Where the emulator answers an error, or more, because AWS does (moto alone answers success)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import botocore.exceptions
import pytest

from audit_stack.local import LocalAuditPipeline
from tests.e2e.probe import write_assembly

pytestmark = pytest.mark.e2e

HOUR = 3600


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[LocalAuditPipeline]:
    directory = write_assembly(
        tmp_path / "probe.out",
        {
            "DeadLetters": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": 30,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetters", "Arn"]},
                        "maxReceiveCount": 1,
                    },
                },
            },
            "SigningKey": {
                "Type": "AWS::KMS::Key",
                "Properties": {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
            },
        },
        {
            "QueueUrl": {"Value": {"Ref": "Queue"}},
            "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetters"}},
            "QueueArn": {"Value": {"Fn::GetAtt": ["Queue", "Arn"]}},
            "KeyArn": {"Value": {"Fn::GetAtt": ["SigningKey", "Arn"]}},
        },
    )
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        yield pipeline


def _received(pipeline: LocalAuditPipeline, output: str = "QueueUrl", **options: object) -> dict:  # type: ignore[type-arg]
    messages = pipeline.client("sqs").receive_message(
        QueueUrl=pipeline.outputs[output], MaxNumberOfMessages=1, WaitTimeSeconds=1, **options
    )["Messages"]
    assert len(messages) == 1
    return dict(messages[0])


def test_changing_the_visibility_of_a_message_no_longer_in_flight_is_message_not_inflight(
    emulator: LocalAuditPipeline,
) -> None:
    """ChangeMessageVisibility: "MessageNotInflight: The specified message isn't in flight"
    (docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html)."""
    sqs = emulator.client("sqs")
    sqs.send_message(QueueUrl=emulator.outputs["QueueUrl"], MessageBody="late")
    handle = _received(emulator)["ReceiptHandle"]
    emulator.advance_time(31)  # the visibility timeout ends: visible again, not in flight

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sqs.change_message_visibility(
            QueueUrl=emulator.outputs["QueueUrl"], ReceiptHandle=handle, VisibilityTimeout=60
        )

    batch = sqs.change_message_visibility_batch(
        QueueUrl=emulator.outputs["QueueUrl"],
        Entries=[{"Id": "0", "ReceiptHandle": handle, "VisibilityTimeout": 0}],
    )
    assert "MessageNotInflight" in raised.value.response["Error"]["Code"]
    assert [entry["Code"] for entry in batch["Failed"]] == [
        "AWS.SimpleQueueService.MessageNotInflight"
    ]


def test_the_twelve_hour_visibility_limit_counts_from_the_receive_not_the_send(
    emulator: LocalAuditPipeline,
) -> None:
    """ "The maximum is 12 hours" from when the message was received
    (docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html);
    a message sent 13 hours ago (audit dlq show reads such messages) may still be hidden."""
    sqs = emulator.client("sqs")
    sqs.send_message(QueueUrl=emulator.outputs["DeadLetterQueueUrl"], MessageBody="old")
    emulator.advance_time(13 * HOUR)
    handle = _received(emulator, "DeadLetterQueueUrl", VisibilityTimeout=2 * HOUR)["ReceiptHandle"]
    emulator.advance_time(HOUR)

    sqs.change_message_visibility(
        QueueUrl=emulator.outputs["DeadLetterQueueUrl"], ReceiptHandle=handle, VisibilityTimeout=60
    )
    with pytest.raises(botocore.exceptions.ClientError, match="beyond the limit"):
        # One hour after the receive, 11.5 more hours would end 12.5 hours after it.
        sqs.change_message_visibility(
            QueueUrl=emulator.outputs["DeadLetterQueueUrl"],
            ReceiptHandle=handle,
            VisibilityTimeout=int(11.5 * HOUR),
        )


def test_a_message_moved_by_the_redrive_policy_names_its_source_queue(
    emulator: LocalAuditPipeline,
) -> None:
    """SQS sets DeadLetterQueueSourceArn on a message it moves to a DLQ
    (docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html)."""
    sqs = emulator.client("sqs")
    sqs.send_message(QueueUrl=emulator.outputs["QueueUrl"], MessageBody="poison")
    _received(emulator, VisibilityTimeout=1)
    emulator.advance_time(2)
    # The second receive moves it (maxReceiveCount 1) and returns nothing.
    sqs.receive_message(QueueUrl=emulator.outputs["QueueUrl"], WaitTimeSeconds=0)

    moved = _received(emulator, "DeadLetterQueueUrl", MessageSystemAttributeNames=["All"])

    assert moved["Body"] == "poison"
    assert moved["Attributes"]["DeadLetterQueueSourceArn"] == emulator.outputs["QueueArn"]


def test_verify_of_a_tampered_message_raises_kms_invalid_signature(
    emulator: LocalAuditPipeline,
) -> None:
    """Verify: "If the signature is not valid, the Verify operation fails with a
    KMSInvalidSignatureException" (docs.aws.amazon.com/kms/latest/APIReference/API_Verify.html)."""
    kms = emulator.client("kms")
    key = emulator.outputs["KeyArn"]
    signature = kms.sign(
        KeyId=key, Message=b"sealed", MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256"
    )["Signature"]
    genuine = kms.verify(
        KeyId=key,
        Message=b"sealed",
        MessageType="RAW",
        Signature=signature,
        SigningAlgorithm="ECDSA_SHA_256",
    )

    with pytest.raises(kms.exceptions.KMSInvalidSignatureException):
        kms.verify(
            KeyId=key,
            Message=b"tampered",
            MessageType="RAW",
            Signature=signature,
            SigningAlgorithm="ECDSA_SHA_256",
        )
    assert genuine["SignatureValid"] is True


def test_a_service_whose_resources_were_all_skipped_answers_not_implemented(
    tmp_path: Path,
) -> None:
    """moto would list no rules, no log groups and no role for a template that has them; the
    emulator says it does not emulate those services instead (HTTP 501, NotImplemented)."""
    directory = write_assembly(
        tmp_path / "probe.out",
        {
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {"ScheduleExpression": "rate(5 minutes)"},
            },
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {}},
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": {"Statement": []}},
            },
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
        },
        {"QueueUrl": {"Value": {"Ref": "Queue"}}},
    )
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        answers = {}
        calls: dict[str, tuple[str, dict[str, str]]] = {
            "events": ("list_rules", {}),
            "logs": ("describe_log_groups", {}),
            "iam": ("get_role", {"RoleName": "Role"}),
        }
        for service, (operation, arguments) in calls.items():
            with pytest.raises(botocore.exceptions.ClientError) as raised:
                getattr(pipeline.client(service), operation)(**arguments)
            answers[service] = (
                raised.value.response["ResponseMetadata"]["HTTPStatusCode"],
                raised.value.response["Error"]["Code"],
            )
        queue = pipeline.client("sqs").get_queue_attributes(
            QueueUrl=pipeline.outputs["QueueUrl"], AttributeNames=["QueueArn"]
        )

    assert answers == {service: (501, "NotImplemented") for service in ("events", "logs", "iam")}
    assert queue["Attributes"]["QueueArn"].endswith(pipeline.outputs["QueueUrl"].split("/")[-1])


def test_a_notifications_unsubscribe_url_names_its_subscription_and_region(
    tmp_path: Path,
) -> None:
    """SNS's JSON for a Notification: "UnsubscribeURL: A URL that you can use to unsubscribe the
    endpoint from this topic" (docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html),
    i.e. this subscription's ARN, on the topic's regional endpoint."""
    directory = write_assembly(
        tmp_path / "probe.out",
        {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Subscription": {
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "Protocol": "sqs",
                    "TopicArn": {"Ref": "Topic"},
                    "Endpoint": {"Fn::GetAtt": ["Queue", "Arn"]},
                },
            },
        },
        {"QueueUrl": {"Value": {"Ref": "Queue"}}, "TopicArn": {"Value": {"Ref": "Topic"}}},
    )
    with LocalAuditPipeline(directory, "ProbeStack", region="eu-west-1") as pipeline:
        sns = pipeline.client("sns")
        sns.publish(TopicArn=pipeline.outputs["TopicArn"], Message="hello")
        envelope = json.loads(_received(pipeline)["Body"])
        (subscription,) = sns.list_subscriptions_by_topic(TopicArn=pipeline.outputs["TopicArn"])[
            "Subscriptions"
        ]

    assert envelope["UnsubscribeURL"] == (
        "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"
        f"&SubscriptionArn={subscription['SubscriptionArn']}"
    )
