"""``encrypted_alarm_topic``: an alarm topic under the pipeline's key that CloudWatch can reach."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms

from audit_stack import AuditPipeline
from audit_stack.construct.alarm_topic import encrypted_alarm_topic
from tests.cdk_app import new_app, synth_with_cdk_nag

pytestmark = pytest.mark.synth


def test_alarm_topic_uses_the_pipelines_key_and_lets_cloudwatch_use_it() -> None:
    app = new_app()
    stack = cdk.Stack(app, "Alarms")
    key = kms.Key(stack, "AuditKey", enable_key_rotation=True)
    topic = encrypted_alarm_topic(stack, "AlarmTopic", encryption_key=key)
    AuditPipeline(stack, "Audit", encryption_key=key, alarm_action=cw_actions.SnsAction(topic))
    template = synth_with_cdk_nag(app).get_stack_by_name("Alarms").template  # nag-clean
    key_id = next(k for k in template["Resources"] if k.startswith("AuditKey"))
    key_resource = template["Resources"][key_id]
    topics = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::SNS::Topic"}
    alarm_topic = next(v for k, v in topics.items() if k.startswith("AlarmTopic"))
    assert alarm_topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    key_statements = key_resource["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in key_statements
    )
    policies = [
        v["Properties"]["PolicyDocument"]["Statement"]
        for v in template["Resources"].values()
        if v["Type"] == "AWS::SNS::TopicPolicy"
    ]
    assert any(
        s.get("Sid") == "CloudWatchAlarmsPublish" for statements in policies for s in statements
    )
    assert "AlarmTopic" in json.dumps(
        [
            v["Properties"].get("AlarmActions")
            for v in template["Resources"].values()
            if v["Type"] == "AWS::CloudWatch::Alarm"
        ]
    )


def test_an_imported_key_gets_the_statement_to_add_as_a_warning() -> None:
    app = new_app()
    stack = cdk.Stack(app, "Imported")
    key = kms.Key.from_key_arn(
        stack, "Key", "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    encrypted_alarm_topic(stack, "AlarmTopic", encryption_key=key)
    messages = app.synth().get_stack_by_name("Imported").messages
    warnings = [str(m.entry.data) for m in messages if "imported-key-policy" in str(m.entry.data)]
    assert warnings and "cloudwatch.amazonaws.com" in warnings[0]
