"""The emulator enforces what AWS enforces: identity policies of the template's roles, resource
policies of queues, topics, tables, keys and secrets, and SNS deliveries that the queue's policy
denies (they go to the subscription's DLQ)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from audit_stack import discovery
from audit_stack.lambda_code import audit_events_module
from audit_stack.local import LocalAuditPipeline
from audit_stack.local.__main__ import iam_mode, main
from audit_stack.local.pipeline import FunctionInvocationError
from tests.e2e.helpers import records_of
from tests.e2e.probe import probe_function, write_assembly

# The recorder's item module (the Lambda asset's package, loaded from its folder).
items = audit_events_module("items")

pytestmark = pytest.mark.e2e

EMAIL = "jane.roe@mail.com"

# A probe whose handler sends one message to QUEUE_URL with the function's own credentials.
SENDER_HANDLER = """
import os

import boto3


def handler(event, context):
    boto3.client("sqs").send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody="hello")
    return {"sent": True}
"""


def _error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_a_forged_message_from_the_administrator_is_denied_by_the_queue_policy(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    """The queue policy's explicit deny beats the administrator's AdministratorAccess, as in
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html;
    SQS answers AccessDenied (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html).
    """
    sqs = local_audit_pipeline.client("sqs")
    forged = json.dumps({"Message": "{}", "TopicArn": local_audit_pipeline.topic_arn})
    with pytest.raises(ClientError) as denied:
        sqs.send_message(QueueUrl=local_audit_pipeline.queue_url, MessageBody=forged)
    assert _error_code(denied) == "AccessDenied"
    assert "explicit deny" in str(denied.value)
    attributes = sqs.get_queue_attributes(
        QueueUrl=local_audit_pipeline.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_an_overwrite_of_a_record_by_the_administrator_is_denied_by_the_table_policy(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    """DynamoDB resource-based policies are evaluated with the caller's IAM policies; a denied
    PutItem answers AccessDeniedException.
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/access-control-resource-based.html
    """
    local_audit_pipeline.invoke("publisher", {"email": EMAIL})
    local_audit_pipeline.run_until_idle()
    (record,) = records_of(local_audit_pipeline, EMAIL)
    ddb = local_audit_pipeline.client("dynamodb")
    key = {"subject": record["subject"], "event_key": record["event_key"]}
    item = ddb.get_item(TableName=local_audit_pipeline.table_name, Key=key)["Item"]
    with pytest.raises(ClientError) as denied:
        ddb.put_item(
            TableName=local_audit_pipeline.table_name,
            Item={**item, "event_type": {"S": "Rewritten"}},
        )
    assert _error_code(denied) == "AccessDeniedException"
    with pytest.raises(ClientError) as deleted:
        ddb.delete_item(TableName=local_audit_pipeline.table_name, Key=key)
    assert _error_code(deleted) == "AccessDeniedException"
    assert records_of(local_audit_pipeline, EMAIL)[0]["event_type"] == record["event_type"]


def test_an_insert_by_the_administrator_is_denied_only_the_recorder_inserts(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    """PartiQL INSERT, the recorder's batched write, is left to the recorder's role by the table
    policy (AppendOnlyOneInserter): an administrator's forged record is refused and not stored.
    (The emulator refuses the whole BatchExecuteStatement; DynamoDB's BatchStatementError also
    has a per-statement AccessDenied, which the recorder handles as a failed write.)"""
    local_audit_pipeline.invoke("publisher", {"email": EMAIL})
    local_audit_pipeline.run_until_idle()
    (record,) = records_of(local_audit_pipeline, EMAIL)
    table = local_audit_pipeline.table_name
    ddb = local_audit_pipeline.client("dynamodb")
    forged = {**record, "event_key": {"S": record["event_key"]["S"] + "-forged"}}
    with pytest.raises(ClientError) as denied:
        ddb.batch_execute_statement(Statements=[items.insert_statement(table, forged)])
    assert _error_code(denied) == "AccessDeniedException"
    assert [found["event_key"] for found in records_of(local_audit_pipeline, EMAIL)] == [
        record["event_key"]
    ]


def test_signing_with_the_digest_key_is_denied_to_anyone_but_the_sealer(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    """A key policy must allow the principal; the signing key's denies every principal but the
    sealer's role (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html),
    and KMS answers AccessDeniedException. The sealer itself still signs.
    """
    key_id = local_audit_pipeline.resource_name(discovery.SIGNING_KEY)
    kms = local_audit_pipeline.client("kms")
    with pytest.raises(ClientError) as denied:
        kms.sign(
            KeyId=key_id,
            Message=b"forged digest",
            MessageType="RAW",
            SigningAlgorithm="ECDSA_SHA_256",
        )
    assert _error_code(denied) == "AccessDeniedException"
    local_audit_pipeline.invoke("publisher", {"email": EMAIL})
    local_audit_pipeline.run_until_idle()
    local_audit_pipeline.invoke("sealer", {})  # raises FunctionInvocationError if it cannot sign


def test_with_enforcement_off_the_forged_message_is_accepted(
    local_audit_assembly: Path,
) -> None:
    """``enforce_iam=False`` is the emulator before enforcement: every request is allowed."""
    with (
        LocalAuditPipeline(local_audit_assembly, enforce_iam=False) as pipeline,
        pipeline.event_sources_paused(),
    ):
        sqs = pipeline.client("sqs")
        sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody="forged")
        attributes = sqs.get_queue_attributes(
            QueueUrl=pipeline.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "1"


def test_outside_caller_acts_as_the_template_role_named_by_its_logical_id(
    local_audit_assembly: Path, template_json: dict[str, Any]
) -> None:
    """``principal=`` a role of the template (its logical id: physical names are generated at
    deployment): the caller has that role's policies only, so the recorder's role may not
    publish to the topic, no identity policy allowing it
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)."""
    recorder_role = next(
        logical_id
        for logical_id, resource in template_json["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role" and "RecordAuditEventFunctionRole" in logical_id
    )
    with LocalAuditPipeline(local_audit_assembly, principal=recorder_role) as pipeline:
        assert pipeline.principal.startswith("arn:aws:iam::")
        assert pipeline.principal in pipeline.enforcer.store.role_policies
        with pytest.raises(ClientError) as denied:
            pipeline.client("sns").publish(TopicArn=pipeline.topic_arn, Message="{}")
        assert _error_code(denied) == "AuthorizationError"
        assert pipeline.principal in str(denied.value)


# -- a function's own calls ------------------------------------------------------------------


def _sender_stack(directory: Path, grant: dict[str, Any] | None) -> Path:
    """A function with its own role, sending to a queue; ``grant`` is the role's policy."""
    resources: dict[str, Any] = {
        "Target": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "SenderRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ]
                }
            },
        },
        "Probe": probe_function(
            Role={"Fn::GetAtt": ["SenderRole", "Arn"]},
            Timeout=10,
            Environment={"Variables": {"QUEUE_URL": {"Ref": "Target"}}},
        ),
    }
    if grant is not None:
        resources["SenderPolicy"] = {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "send",
                "Roles": [{"Ref": "SenderRole"}],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [grant]},
            },
        }
    outputs = {
        "ProbeFunctionName": {"Value": {"Ref": "Probe"}},
        "QueueUrl": {"Value": {"Ref": "Target"}},
    }
    directory = write_assembly(directory, resources, outputs)
    (directory / "asset.probe" / "probe.py").write_text(SENDER_HANDLER)
    return directory


def _send_grant(condition: dict[str, Any] | None = None) -> dict[str, Any]:
    grant: dict[str, Any] = {
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Resource": {"Fn::GetAtt": ["Target", "Arn"]},
    }
    if condition is not None:
        grant["Condition"] = condition
    return grant


def test_a_function_missing_a_grant_fails_with_access_denied(tmp_path: Path) -> None:
    """A function's calls are made with its execution role's credentials
    (https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html): without
    sqs:SendMessage in the role's policy, SendMessage answers AccessDenied."""
    with LocalAuditPipeline(_sender_stack(tmp_path / "a.out", None), "ProbeStack") as pipeline:
        with pytest.raises(FunctionInvocationError) as failed:
            pipeline.invoke("Probe", {})
        assert "AccessDenied" in failed.value.error_message
        assert "SenderRole" in failed.value.error_message or "role/" in failed.value.error_message


def test_a_function_with_the_grant_sends(tmp_path: Path) -> None:
    """The same function with sqs:SendMessage on the queue in its role's policy succeeds."""
    with LocalAuditPipeline(
        _sender_stack(tmp_path / "b.out", _send_grant()), "ProbeStack"
    ) as pipeline:
        assert pipeline.invoke("Probe", {}) == {"sent": True}


def test_a_functions_own_calls_carry_its_arn_as_lambda_source_function_arn(
    tmp_path: Path,
) -> None:
    """lambda:SourceFunctionArn is the ARN of the function whose code makes the call
    (https://docs.aws.amazon.com/lambda/latest/dg/permissions-source-function-arn.html): a grant
    conditioned on it admits the function's calls, and one naming another function does not."""
    own = {"ArnEquals": {"lambda:SourceFunctionArn": {"Fn::GetAtt": ["Probe", "Arn"]}}}
    with LocalAuditPipeline(
        _sender_stack(tmp_path / "c.out", _send_grant(own)), "ProbeStack"
    ) as pipeline:
        assert pipeline.invoke("Probe", {}) == {"sent": True}
    other = {"ArnEquals": {"lambda:SourceFunctionArn": "arn:aws:lambda:*:*:function:other"}}
    with (
        LocalAuditPipeline(
            _sender_stack(tmp_path / "d.out", _send_grant(other)), "ProbeStack"
        ) as pipeline,
        pytest.raises(FunctionInvocationError, match="AccessDenied"),
    ):
        pipeline.invoke("Probe", {})


def _polled_stack(directory: Path, *, grant: bool) -> Path:
    """A queue feeding the probe through a mapping; the function's role may consume the queue
    only with ``grant``, and then only for calls without lambda:SourceFunctionArn."""
    resources: dict[str, Any] = {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 30}},
        "PollerRole": {"Type": "AWS::IAM::Role", "Properties": {}},
        "Probe": probe_function(Role={"Fn::GetAtt": ["PollerRole", "Arn"]}),
        "Mapping": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]},
                "FunctionName": {"Ref": "Probe"},
                "BatchSize": 1,
            },
        },
    }
    if grant:
        resources["PollerPolicy"] = {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "consume",
                "Roles": [{"Ref": "PollerRole"}],
                "PolicyDocument": {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "sqs:ReceiveMessage",
                                "sqs:DeleteMessage",
                                "sqs:ChangeMessageVisibility",
                                "sqs:GetQueueAttributes",
                            ],
                            "Resource": {"Fn::GetAtt": ["Queue", "Arn"]},
                            "Condition": {"Null": {"lambda:SourceFunctionArn": "true"}},
                        }
                    ]
                },
            },
        }
    outputs = {
        "ProbeFunctionName": {"Value": {"Ref": "Probe"}},
        "QueueUrl": {"Value": {"Ref": "Queue"}},
    }
    return write_assembly(directory, resources, outputs)


def test_the_event_source_mapping_polls_as_the_functions_role_without_its_arn(
    tmp_path: Path,
) -> None:
    """The mapping reads the queue with the execution role's permissions
    (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#events-sqs-permissions), and
    its calls are not the function's own, so they carry no lambda:SourceFunctionArn
    (https://docs.aws.amazon.com/lambda/latest/dg/permissions-source-function-arn.html): a grant
    that requires the key to be absent admits the polling; without the grant nothing is
    received, and the denied polls back off instead of spinning."""
    with LocalAuditPipeline(_polled_stack(tmp_path / "no.out", grant=False), "ProbeStack") as (
        pipeline
    ):
        pipeline.client("sqs").send_message(QueueUrl=pipeline.outputs["QueueUrl"], MessageBody="0")
        time.sleep(2)
        assert pipeline.invocations() == []
        polls = pipeline.instrumentation.count("sqs:ReceiveMessage")
        assert 1 <= polls <= 20, polls
    with LocalAuditPipeline(_polled_stack(tmp_path / "yes.out", grant=True), "ProbeStack") as (
        pipeline
    ):
        pipeline.client("sqs").send_message(QueueUrl=pipeline.outputs["QueueUrl"], MessageBody="0")
        pipeline.run_until_idle()
        (invocation,) = pipeline.invocations()
        assert invocation.succeeded


# -- SNS → SQS deliveries --------------------------------------------------------------------


def _sns_policy(queue: str, topic: dict[str, Any] | str) -> dict[str, Any]:
    return {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{"Ref": queue}],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": {"Fn::GetAtt": [queue, "Arn"]},
                        "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                    }
                ],
            },
        },
    }


def _delivery_stack(
    directory: Path, *, sns_may_send: bool, key_statement: dict[str, Any] | None = None
) -> Path:
    """A topic, a subscribed queue whose policy admits this topic (or only another one), and
    the subscription's DLQ, whose policy admits the topic."""
    topic_ref = {"Ref": "Topic"}
    other_topic = "arn:aws:sns:us-east-1:123456789012:SomeOtherTopic"
    resources: dict[str, Any] = {
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        "Subscribed": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "SubscriptionDlq": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "SubscribedPolicy": _sns_policy("Subscribed", topic_ref if sns_may_send else other_topic),
        "DlqPolicy": _sns_policy("SubscriptionDlq", topic_ref),
        "Subscription": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "Protocol": "sqs",
                "TopicArn": topic_ref,
                "Endpoint": {"Fn::GetAtt": ["Subscribed", "Arn"]},
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["SubscriptionDlq", "Arn"]}
                },
            },
        },
    }
    if key_statement is not None:
        # The subscribed queue is encrypted with a customer managed key of this policy.
        resources["QueueKey"] = {
            "Type": "AWS::KMS::Key",
            "Properties": {"KeyPolicy": {"Version": "2012-10-17", "Statement": [key_statement]}},
        }
        resources["Subscribed"]["Properties"]["KmsMasterKeyId"] = {
            "Fn::GetAtt": ["QueueKey", "Arn"]
        }
    outputs = {
        "TopicArn": {"Value": topic_ref},
        "SubscribedUrl": {"Value": {"Ref": "Subscribed"}},
        "DlqUrl": {"Value": {"Ref": "SubscriptionDlq"}},
    }
    return write_assembly(directory, resources, outputs)


def _bodies(pipeline: LocalAuditPipeline, output: str) -> list[str]:
    messages = pipeline.client("sqs").receive_message(
        QueueUrl=pipeline.outputs[output], MaxNumberOfMessages=10
    )
    return [message["Body"] for message in messages.get("Messages", [])]


def test_a_delivery_the_queue_policy_denies_goes_to_the_subscription_dlq(tmp_path: Path) -> None:
    """SNS needs the queue policy's permission to deliver
    (https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html); a delivery
    that fails for a client-side reason goes to the subscription's dead-letter queue and Publish
    succeeds (https://docs.aws.amazon.com/sns/latest/dg/sns-dead-letter-queues.html)."""
    directory = _delivery_stack(tmp_path / "denied.out", sns_may_send=False)
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        answer = pipeline.client("sns").publish(
            TopicArn=pipeline.outputs["TopicArn"], Message="to be dead-lettered"
        )
        assert answer["MessageId"]
        assert _bodies(pipeline, "SubscribedUrl") == []
        (body,) = _bodies(pipeline, "DlqUrl")
        assert json.loads(body)["Message"] == "to be dead-lettered"
        ((_, queue_arn, why),) = pipeline.failed_deliveries
        assert queue_arn.endswith("Subscribed") or "Subscribed" in queue_arn
        assert "sqs:SendMessage not allowed" in why


ENABLE_IAM_ONLY = {
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "kms:*",
    "Resource": "*",
}
SNS_MAY_ENCRYPT = {
    "Effect": "Allow",
    "Principal": {"Service": "sns.amazonaws.com"},
    "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
    "Resource": "*",
}


def test_a_delivery_the_queues_key_policy_denies_goes_to_the_subscription_dlq(
    tmp_path: Path,
) -> None:
    """To an encrypted queue, SNS needs kms:GenerateDataKey and kms:Decrypt in the key's policy
    (https://docs.aws.amazon.com/sns/latest/dg/sns-enable-encryption-for-topic-sqs-queue-subscriptions.html):
    a key policy that only enables the account's IAM policies lets the delivery fail to the DLQ;
    one naming sns.amazonaws.com lets it through."""
    directory = _delivery_stack(
        tmp_path / "key-denied.out", sns_may_send=True, key_statement=ENABLE_IAM_ONLY
    )
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        pipeline.client("sns").publish(TopicArn=pipeline.outputs["TopicArn"], Message="sealed")
        assert len(_bodies(pipeline, "DlqUrl")) == 1
        ((_, _, why),) = pipeline.failed_deliveries
        assert "kms:GenerateDataKey not allowed" in why
    directory = _delivery_stack(
        tmp_path / "key-allowed.out", sns_may_send=True, key_statement=SNS_MAY_ENCRYPT
    )
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        pipeline.client("sns").publish(TopicArn=pipeline.outputs["TopicArn"], Message="sealed")
        assert pipeline.failed_deliveries == []
        assert _bodies(pipeline, "DlqUrl") == []


def test_a_delivery_the_queue_policy_allows_reaches_the_queue(tmp_path: Path) -> None:
    """The same stack with the queue policy naming this topic delivers to the queue."""
    directory = _delivery_stack(tmp_path / "allowed.out", sns_may_send=True)
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        pipeline.client("sns").publish(TopicArn=pipeline.outputs["TopicArn"], Message="hello")
        (body,) = _bodies(pipeline, "SubscribedUrl")
        assert json.loads(body)["Message"] == "hello"
        assert _bodies(pipeline, "DlqUrl") == []


def test_a_delivery_to_a_deleted_queue_goes_to_the_dlq_and_publish_succeeds(
    tmp_path: Path,
) -> None:
    """A deleted endpoint is a client-side delivery error: the message goes to the
    subscription's DLQ (https://docs.aws.amazon.com/sns/latest/dg/sns-dead-letter-queues.html)."""
    directory = _delivery_stack(tmp_path / "deleted.out", sns_may_send=True)
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        pipeline.client("sqs").delete_queue(QueueUrl=pipeline.outputs["SubscribedUrl"])
        answer = pipeline.client("sns").publish(
            TopicArn=pipeline.outputs["TopicArn"], Message="orphan"
        )
        assert answer["MessageId"]
        (body,) = _bodies(pipeline, "DlqUrl")
        assert json.loads(body)["Message"] == "orphan"


def test_with_enforcement_off_the_denied_delivery_reaches_the_queue(tmp_path: Path) -> None:
    """``enforce_iam=False``: the queue policy is not evaluated, SNS delivers."""
    directory = _delivery_stack(tmp_path / "off.out", sns_may_send=False)
    with LocalAuditPipeline(directory, "ProbeStack", enforce_iam=False) as pipeline:
        pipeline.client("sns").publish(TopicArn=pipeline.outputs["TopicArn"], Message="hello")
        assert len(_bodies(pipeline, "SubscribedUrl")) == 1
        assert _bodies(pipeline, "DlqUrl") == []


# -- the switch and the principal, from the command line -------------------------------------


def test_the_demo_runs_with_iam_enforced_and_says_so(local_audit_assembly: Path) -> None:
    """`make demo` passes with enforcement on, and its output names the mode and principal."""
    out = io.StringIO()
    assert main(["demo", "--assembly", str(local_audit_assembly)], out=out) == 0, out.getvalue()
    assert "IAM enforced, outside callers are arn:aws:iam::123456789012:role/Administrator" in (
        out.getvalue()
    )


def test_no_enforce_iam_and_as_reach_the_pipeline(local_audit_assembly: Path) -> None:
    """``--no-enforce-iam`` turns enforcement off and the run says so; ``--as`` names the
    outside principal."""
    out = io.StringIO()
    arguments = ["demo", "--assembly", str(local_audit_assembly), "--no-enforce-iam"]
    assert main([*arguments, "--as", "arn:aws:iam::123456789012:role/Ops"], out=out) == 0
    assert "IAM NOT enforced (--no-enforce-iam): every request is allowed" in out.getvalue()
    with LocalAuditPipeline(
        local_audit_assembly, principal="arn:aws:iam::123456789012:role/Ops"
    ) as (pipeline):
        assert iam_mode(pipeline) == (
            "IAM enforced, outside callers are arn:aws:iam::123456789012:role/Ops"
        )
