"""The control-change rules cannot be dodged: every weakening call, with the resource named in
every form the API accepts (name, ARN, partial or qualified ARN), matches a synthesized rule.

The patterns are evaluated by moto's EventBridge pattern matcher on CloudTrail events shaped
like the real ones, with the template's Ref/GetAtt/Fn::* resolved to physical names as long as
CloudFormation generates them (so the 2,048-character pattern limit is checked too).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template
from moto.events.models import EventPattern

from audit_stack import AuditPipeline, AuditStack
from audit_stack.construct import monitoring

pytestmark = pytest.mark.synth

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "111122223333"
REGION = "eu-west-1"
# EventBridge's default quota for an event pattern, in characters.
EVENT_PATTERN_LIMIT = 2048


def _app(**context: Any) -> cdk.App:
    flags = json.loads((ROOT / "cdk.json").read_text())["context"]
    return cdk.App(context={**flags, "aws:cdk:enable-path-metadata": True, **context})


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    app = _app(alarm_email="oncall@example.com")
    stack = AuditStack(app, "Audit", env=cdk.Environment(account=ACCOUNT, region=REGION))
    return dict(Template.from_stack(stack).to_json())


# -- physical names, as long as CloudFormation makes them -----------------------------------


def _generated_name(logical_id: str, limit: int) -> str:
    """``Stack-LogicalId-RANDOM`` padded to the service's longest generated name."""
    name = f"Audit-{logical_id}-"
    return (name + "X1Y2Z3A4B5C6D7E8F9G0H1I2J3K4L5M6N7O8P9Q0" * 4)[:limit]


@dataclass(frozen=True)
class _Physical:
    """One resource's physical identifiers."""

    name: str
    arn: str
    ref: str


def _physical(resource_type: str, logical_id: str) -> _Physical:
    prefix = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:"
    if resource_type == "AWS::DynamoDB::Table":
        name = _generated_name(logical_id, 64)
        return _Physical(name, prefix.format("dynamodb") + f"table/{name}", name)
    if resource_type == "AWS::Lambda::Function":
        name = _generated_name(logical_id, 64)
        return _Physical(name, prefix.format("lambda") + f"function:{name}", name)
    if resource_type == "AWS::SQS::Queue":
        name = _generated_name(logical_id, 80)
        url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        return _Physical(name, prefix.format("sqs") + name, url)
    if resource_type == "AWS::SNS::Topic":
        name = _generated_name(logical_id, 64)
        arn = prefix.format("sns") + name
        return _Physical(name, arn, arn)
    if resource_type == "AWS::KMS::Key":
        key_id = "1234abcd-12ab-34cd-56ef-" + f"{zlib.crc32(logical_id.encode()):012d}"
        return _Physical(key_id, prefix.format("kms") + f"key/{key_id}", key_id)
    if resource_type == "AWS::IAM::Role":
        name = _generated_name(logical_id, 64)
        return _Physical(name, f"arn:aws:iam::{ACCOUNT}:role/{name}", name)
    if resource_type == "AWS::SecretsManager::Secret":
        # CloudFormation names a secret LogicalId-RANDOM; the ARN adds -SIXCHR.
        name = f"{logical_id}-Ab12Cd34Ef56"
        arn = prefix.format("secretsmanager") + f"secret:{name}-QwErTy"
        return _Physical(name, arn, arn)
    if resource_type == "AWS::Lambda::EventSourceMapping":
        uuid = "a1b2c3d4-5678-90ab-cdef-11111EXAMPLE"
        return _Physical(uuid, uuid, uuid)
    name = _generated_name(logical_id, 64)
    return _Physical(name, name, name)


def _resolve(template: dict[str, Any], value: Any) -> Any:
    resources = template["Resources"]
    if isinstance(value, list):
        return [_resolve(template, item) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if value["Ref"] in pseudo:
            return pseudo[value["Ref"]]
        resource = resources[value["Ref"]]
        if "Name" in resource.get("Properties", {}) or "AlarmName" in resource.get(
            "Properties", {}
        ):
            props = resource["Properties"]
            return props.get("Name", props.get("AlarmName"))
        return _physical(resource["Type"], value["Ref"]).ref
    if set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        physical = _physical(resources[logical_id]["Type"], logical_id)
        return physical.arn if attribute == "Arn" else physical.name
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(_resolve(template, part)) for part in parts)
    if set(value) == {"Fn::Split"}:
        separator, text = value["Fn::Split"]
        return str(_resolve(template, text)).split(separator)
    if set(value) == {"Fn::Select"}:
        index, items = value["Fn::Select"]
        return _resolve(template, items)[int(index)]
    return {key: _resolve(template, item) for key, item in value.items()}


def _rules(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each control-change rule's resolved pattern, by rule name."""
    return {
        resource["Properties"]["Name"]: _resolve(template, resource["Properties"]["EventPattern"])
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Events::Rule"
        and "EventPattern" in resource["Properties"]
        and "ControlChange" in resource.get("Metadata", {}).get("aws:cdk:path", "")
    }


def _named(template: dict[str, Any], path_part: str, resource_type: str) -> _Physical:
    for logical_id, resource in template["Resources"].items():
        path = resource.get("Metadata", {}).get("aws:cdk:path", "")
        if resource["Type"] == resource_type and f"/{path_part}/" in f"/{path}/":
            return _physical(resource_type, logical_id)
    raise AssertionError(f"no {resource_type} at {path_part}")


def _matching_rules(rules: dict[str, dict[str, Any]], event: dict[str, Any]) -> list[str]:
    return [
        name
        for name, pattern in rules.items()
        # moto types the event as its own TypedDict; a CloudTrail event is a plain dict.
        if EventPattern(json.dumps(pattern), pattern).matches_event(event)  # type: ignore[arg-type]
    ]


def _cloudtrail(source: str, name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "AWS API Call via CloudTrail",
        "source": f"aws.{source.split('.')[0]}",
        "account": ACCOUNT,
        "time": "2026-12-05T08:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "eventSource": source,
            "eventName": name,
            "awsRegion": REGION,
            "requestParameters": parameters,
        },
    }


# -- every call, every name form -------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    source: str
    name: str
    parameter: str
    forms: tuple[str, ...]
    # Other parameters the call carries, e.g. a table restore's target.
    extra: tuple[tuple[str, Any], ...] = ()

    def events(self, values: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        for form in self.forms:
            parameters: dict[str, Any] = dict(self.extra)
            value = values[form]
            path = self.parameter.split(".")
            node = parameters
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
            yield form, _cloudtrail(self.source, self.name, parameters)


def _forms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For each watched resource, its identifiers in every form an API accepts."""
    table = _named(template, "Audit/Table", "AWS::DynamoDB::Table")
    digests = _named(template, "Sealing/DigestTable", "AWS::DynamoDB::Table")
    queue = _named(template, "Audit/Queue", "AWS::SQS::Queue")
    topic = _named(template, "Audit/Topic", "AWS::SNS::Topic")
    alarm_topic = _named(template, "AlarmTopic", "AWS::SNS::Topic")
    signing_key = _named(template, "Sealing/SigningKey", "AWS::KMS::Key")
    alarm_key = _named(template, "AlarmTopicKey", "AWS::KMS::Key")
    secret = _named(template, "PseudonymSecret", "AWS::SecretsManager::Secret")
    mapping = _named(template, "RecordAuditEventFunction", "AWS::Lambda::EventSourceMapping")
    stream_mapping = _named(template, "SealerFunction", "AWS::Lambda::EventSourceMapping")
    forms: dict[str, dict[str, Any]] = {}
    for label, physical in (("table", table), ("digest table", digests)):
        forms[label] = {"name": physical.name, "arn": physical.arn}
        forms[label + " backup"] = {"arn": f"{physical.arn}/backup/01733385600000-abcdefgh"}
    for label, path in (
        ("publisher", "DeleteAccountFunction"),
        ("recorder", "RecordAuditEventFunction"),
        ("sealer", "SealerFunction"),
    ):
        function = _named(template, path, "AWS::Lambda::Function")
        forms[label] = {
            "name": function.name,
            "arn": function.arn,
            "partial arn": f"{ACCOUNT}:function:{function.name}",
            "qualified arn": f"{function.arn}:$LATEST",
            "name:alias": f"{function.name}:live",
        }
        role = _named(template, f"{path}Role", "AWS::IAM::Role")
        forms[f"{label} role"] = {"name": role.name, "arn": role.arn}
    for label, physical in (("queue", queue),):
        forms[label] = {
            "url": physical.ref,
            "legacy url": f"https://{REGION}.queue.amazonaws.com/{ACCOUNT}/{physical.name}",
            "arn": physical.arn,
        }
    for label, physical in (("topic", topic), ("alarm topic", alarm_topic)):
        forms[label] = {"arn": physical.arn, "subscription arn": f"{physical.arn}:0b1c2d3e-4f5a"}
    for label, physical in (("signing key", signing_key), ("alarm key", alarm_key)):
        forms[label] = {"id": physical.name, "arn": physical.arn}
    forms["secret"] = {
        "name": secret.name,
        "arn": secret.arn,
        "partial arn": secret.arn.rsplit("-", 1)[0],
    }
    forms["mapping"] = {"uuid": mapping.name}
    forms["stream mapping"] = {"uuid": stream_mapping.name}
    rules = sorted(_rules(template))
    forms["rules"] = {name: name for name in rules}
    alarms = [
        resource["Properties"]["AlarmName"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    ]
    forms["alarms"] = {name: name for name in alarms}
    forms["alarm lists"] = {name: [name] for name in alarms}
    forms["trail"] = {"name": "management-events", "arn": f"arn:aws:cloudtrail:{REGION}:x:trail/t"}
    return forms


def _calls() -> list[tuple[str, _Call]]:
    """(resource, call) for every weakening call the rules must see."""
    dynamodb = "dynamodb.amazonaws.com"
    calls: list[tuple[str, _Call]] = []
    for table in ("table", "digest table"):
        for name in (
            "UpdateTable",
            "DeleteTable",
            "UpdateContinuousBackups",
            "UpdateTimeToLive",
            "UpdateKinesisStreamingDestination",
        ):
            calls.append((table, _Call(dynamodb, name, "tableName", ("name", "arn"))))
        for name in ("PutResourcePolicy", "DeleteResourcePolicy"):
            calls.append((table, _Call(dynamodb, name, "resourceArn", ("arn",))))
        calls += [
            (
                table,
                _Call(
                    dynamodb,
                    "RestoreTableToPointInTime",
                    "sourceTableName",
                    ("name",),
                    (("targetTableName", "copy"),),
                ),
            ),
            (
                table,
                _Call(
                    dynamodb,
                    "RestoreTableToPointInTime",
                    "sourceTableArn",
                    ("arn",),
                    (("targetTableName", "copy"),),
                ),
            ),
            (
                table,
                _Call(
                    dynamodb,
                    "RestoreTableToPointInTime",
                    "targetTableName",
                    ("name",),
                    (("sourceTableName", "elsewhere"),),
                ),
            ),
            (table, _Call(dynamodb, "RestoreTableFromBackup", "targetTableName", ("name",))),
            (
                table,
                _Call(dynamodb, "ImportTable", "tableCreationParameters.tableName", ("name",)),
            ),
        ]
        calls.append((f"{table} backup", _Call(dynamodb, "DeleteBackup", "backupArn", ("arn",))))
        calls.append(
            (
                f"{table} backup",
                _Call(
                    dynamodb,
                    "RestoreTableFromBackup",
                    "backupArn",
                    ("arn",),
                    (("targetTableName", "copy"),),
                ),
            )
        )
    sqs = "sqs.amazonaws.com"
    for queue in ("queue",):
        for name in ("SetQueueAttributes", "AddPermission", "RemovePermission", "DeleteQueue"):
            calls.append((queue, _Call(sqs, name, "queueUrl", ("url", "legacy url"))))
        calls.append((queue, _Call(sqs, "PurgeQueue", "queueUrl", ("url", "legacy url"))))
        calls.append((queue, _Call(sqs, "StartMessageMoveTask", "destinationArn", ("arn",))))
    sns = "sns.amazonaws.com"
    for topic in ("topic", "alarm topic"):
        for name in (
            "SetTopicAttributes",
            "AddPermission",
            "RemovePermission",
            "DeleteTopic",
            "Subscribe",
            "ConfirmSubscription",
        ):
            calls.append((topic, _Call(sns, name, "topicArn", ("arn",))))
        for name in ("Unsubscribe", "SetSubscriptionAttributes"):
            calls.append((topic, _Call(sns, name, "subscriptionArn", ("subscription arn",))))
        calls.append((topic, _Call(sns, "PutDataProtectionPolicy", "resourceArn", ("arn",))))
    lambda_ = "lambda.amazonaws.com"
    every_form = ("name", "arn", "partial arn", "qualified arn", "name:alias")
    for function in ("publisher", "recorder", "sealer"):
        # Every Lambda call the rules list, as CloudTrail names it (with an API version).
        for name in [f"{call}20150331" for call in monitoring.LAMBDA_CONTROL_EVENTS]:
            calls.append((function, _Call(lambda_, name, "functionName", every_form)))
    for role in ("publisher role", "recorder role", "sealer role"):
        for name in ("CreateFunction20150331", "UpdateFunctionConfiguration20150331v2"):
            calls.append(
                (role, _Call(lambda_, name, "role", ("arn",), (("functionName", "intruder"),)))
            )
        for name in monitoring.IAM_ROLE_EVENTS:
            calls.append((role, _Call("iam.amazonaws.com", name, "roleName", ("name",))))
    for name in ("UpdateEventSourceMapping20150331", "DeleteEventSourceMapping20150331"):
        for mapping in ("mapping", "stream mapping"):
            calls.append((mapping, _Call(lambda_, name, "uUID", ("uuid",))))
    kms = "kms.amazonaws.com"
    for key in ("signing key", "alarm key"):
        for name in monitoring.KMS_CONTROL_EVENTS:
            calls.append((key, _Call(kms, name, "keyId", ("id", "arn"))))
    for name in monitoring.SECRET_CONTROL_EVENTS:
        calls.append(
            (
                "secret",
                _Call(
                    "secretsmanager.amazonaws.com",
                    name,
                    "secretId",
                    ("name", "arn", "partial arn"),
                ),
            )
        )
    return calls


def _rule_and_alarm_calls(forms: dict[str, dict[str, Any]]) -> list[tuple[str, _Call]]:
    events_source = "events.amazonaws.com"
    rules = tuple(forms["rules"])
    alarms = tuple(forms["alarms"])
    return [
        *(
            ("rules", _Call(events_source, name, "name", rules))
            for name in ("DisableRule", "DeleteRule", "PutRule")
        ),
        ("rules", _Call(events_source, "RemoveTargets", "rule", rules)),
        ("rules", _Call(events_source, "PutTargets", "rule", rules)),
        (
            "alarm lists",
            _Call("monitoring.amazonaws.com", "DisableAlarmActions", "alarmNames", alarms),
        ),
        ("alarm lists", _Call("monitoring.amazonaws.com", "DeleteAlarms", "alarmNames", alarms)),
        ("alarms", _Call("monitoring.amazonaws.com", "PutMetricAlarm", "alarmName", alarms)),
        ("alarms", _Call("monitoring.amazonaws.com", "SetAlarmState", "alarmName", alarms)),
        *(
            ("trail", _Call("cloudtrail.amazonaws.com", name, "name", ("name", "arn")))
            for name in monitoring.CLOUDTRAIL_EVENTS
        ),
    ]


def test_every_weakening_call_matches_a_rule_whatever_form_names_the_resource(
    template: dict[str, Any],
) -> None:
    rules = _rules(template)
    forms = _forms(template)
    missed: list[str] = []
    checked = 0
    for resource, call in [*_calls(), *_rule_and_alarm_calls(forms)]:
        for form, event in call.events(forms[resource]):
            checked += 1
            if not _matching_rules(rules, event):
                missed.append(f"{call.name} {resource} by {form}")
    assert missed == []
    # Every listed call in every form was tried (not an empty loop).
    assert checked > 300


def test_a_rule_cannot_be_disabled_unseen_because_another_rule_watches_it(
    template: dict[str, Any],
) -> None:
    rules = _rules(template)
    for name in rules:
        event = _cloudtrail("events.amazonaws.com", "DisableRule", {"name": name})
        watchers = [rule for rule in _matching_rules(rules, event) if rule != name]
        assert watchers, f"disabling {name} is seen only by itself"


@pytest.mark.parametrize(
    ("source", "name", "parameters"),
    [
        # The same calls on resources that are not the pipeline's.
        ("dynamodb.amazonaws.com", "UpdateTable", {"tableName": "orders"}),
        ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2", {"functionName": "billing"}),
        ("sqs.amazonaws.com", "PurgeQueue", {"queueUrl": "https://sqs/1/other"}),
        ("kms.amazonaws.com", "DisableKey", {"keyId": "0000aaaa-other"}),
        ("events.amazonaws.com", "DisableRule", {"name": "nightly-report"}),
        ("monitoring.amazonaws.com", "DeleteAlarms", {"alarmNames": ["cpu-high"]}),
        # A read of the audit table is not a change.
        ("dynamodb.amazonaws.com", "DescribeTable", {"tableName": "__TABLE__"}),
    ],
)
def test_a_call_on_another_resource_or_a_read_matches_no_rule(
    template: dict[str, Any], source: str, name: str, parameters: dict[str, Any]
) -> None:
    table = _named(template, "Audit/Table", "AWS::DynamoDB::Table").name
    parameters = {
        key: (table if value == "__TABLE__" else value) for key, value in parameters.items()
    }
    assert _matching_rules(_rules(template), _cloudtrail(source, name, parameters)) == []


def test_every_rule_pattern_fits_eventbridges_limit_with_the_longest_generated_names(
    template: dict[str, Any],
) -> None:
    sizes = {
        name: len(json.dumps(pattern, separators=(",", ":")))
        for name, pattern in _rules(template).items()
    }
    assert len(sizes) == 10
    assert max(sizes.values()) <= EVENT_PATTERN_LIMIT, sizes


def test_every_rule_sends_its_matches_to_the_alarm_topic_and_the_alarm_sums_them(
    template: dict[str, Any],
) -> None:
    topic_id = next(
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::SNS::Topic"
        and resource["Properties"].get("DisplayName") == "Audit pipeline alarms"
    )
    rules = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Events::Rule" and "EventPattern" in resource["Properties"]
    ]
    assert all(rule["Targets"][0]["Arn"] == {"Ref": topic_id} for rule in rules)
    alarm = next(
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"]["AlarmName"].endswith("-ControlChangedAlarm")
    )
    watched = {
        query["MetricStat"]["Metric"]["Dimensions"][0]["Value"]
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }
    assert watched == {rule["Name"] for rule in rules}


def test_eventbridge_may_use_the_alarm_topics_key(template: dict[str, Any]) -> None:
    key = next(
        resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::KMS::Key" and logical_id.startswith("AlarmTopicKey")
    )
    statement = next(
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "EventBridgeRulesPublish"
    )
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_audit_stack_without_an_alarm_subscriber_warns_at_synthesis() -> None:
    stack = AuditStack(_app(), "Audit", env=cdk.Environment(account=ACCOUNT, region=REGION))
    Annotations.from_stack(stack).has_warning(
        "/Audit", Match.string_like_regexp("alarm topic has no subscriber")
    )


def test_outside_us_east_1_the_stack_says_where_iam_events_arrive() -> None:
    stack = AuditStack(
        _app(alarm_email="oncall@example.com"),
        "Audit",
        env=cdk.Environment(account=ACCOUNT, region=REGION),
    )
    Annotations.from_stack(stack).has_info(
        "/Audit/Audit", Match.string_like_regexp("reach EventBridge in us-east-1 only")
    )


def test_a_customer_managed_key_is_watched_with_the_signing_key() -> None:
    stack = cdk.Stack(_app(), "Other", env=cdk.Environment(account=ACCOUNT, region=REGION))
    key = cdk.aws_kms.Key(stack, "CustomerKey", enable_key_rotation=True)
    AuditPipeline(stack, "Audit", encryption_key=key)
    template = dict(Template.from_stack(stack).to_json())
    key_id = next(k for k in template["Resources"] if k.startswith("CustomerKey"))
    rules = _rules(template)
    for form in (_physical("AWS::KMS::Key", key_id).name, _physical("AWS::KMS::Key", key_id).arn):
        event = _cloudtrail("kms.amazonaws.com", "PutKeyPolicy", {"keyId": form})
        assert _matching_rules(rules, event) != []
