"""Fine-grained assertions on the synthesized template: one test per row of the defaults table."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from audit_stack import AuditPipeline, outputs
from audit_stack.construct.functions import POWERTOOLS_VERSION, RUNTIME

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template(template_json: dict[str, Any]) -> Template:
    return Template.from_json(template_json)


def _only(template: Template, resource_type: str, props: Any = None) -> dict[str, Any]:
    found = template.find_resources(resource_type, props)
    assert len(found) == 1, f"expected one {resource_type}, found {list(found)}"
    return dict(next(iter(found.values())))


def _logical_id(template: Template, resource_type: str, props: Any = None) -> str:
    found = template.find_resources(resource_type, props)
    assert len(found) == 1
    return next(iter(found))


def _pipeline_id(template: Template, resource_type: str, path: str) -> str:
    """The logical id of the pipeline's resource at construct path Audit/<path>."""
    found = [
        logical_id
        for logical_id in template.find_resources(resource_type)
        if re.fullmatch(f"Audit{path}[0-9A-F]{{8}}", logical_id)
    ]
    assert len(found) == 1, f"expected one {resource_type} Audit/{path}, found {found}"
    return found[0]


def _pipeline(template: Template, resource_type: str, path: str) -> dict[str, Any]:
    return dict(template.find_resources(resource_type)[_pipeline_id(template, resource_type, path)])


def _queues(template: Template) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(source queue, dead-letter queue, DLQ logical id)."""
    dlq_id = _pipeline_id(template, "AWS::SQS::Queue", "DeadLetterQueue")
    queues = template.find_resources("AWS::SQS::Queue")
    return _pipeline(template, "AWS::SQS::Queue", "Queue"), dict(queues[dlq_id]), dlq_id


def _table(template: Template) -> dict[str, Any]:
    return _pipeline(template, "AWS::DynamoDB::Table", "Table")


def _sealer(template: Template) -> dict[str, Any]:
    return _only(
        template,
        "AWS::Lambda::Function",
        {"Properties": {"Handler": "audit_events.seal_records.handler"}},
    )


def _recorder(template: Template) -> dict[str, Any]:
    return _only(
        template,
        "AWS::Lambda::Function",
        {"Properties": {"Handler": "audit_events.record_audit_event.handler"}},
    )


def _publisher(template: Template) -> dict[str, Any]:
    return _only(
        template,
        "AWS::Lambda::Function",
        {"Properties": {"Handler": "audit_events.delete_account.handler"}},
    )


def test_dead_letter_queue_after_five_receives(template: Template) -> None:
    source, _, dlq_id = _queues(template)
    assert source["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": 5,
    }


def test_dead_letter_queue_keeps_messages_fourteen_days(template: Template) -> None:
    _, dlq, _ = _queues(template)
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_source_queue_retention_is_shorter_than_the_dead_letter_queue(template: Template) -> None:
    source, dlq, _ = _queues(template)
    assert source["Properties"]["MessageRetentionPeriod"] == 7 * 24 * 3600
    assert (
        source["Properties"]["MessageRetentionPeriod"] < dlq["Properties"]["MessageRetentionPeriod"]
    )


def test_visibility_timeout_is_six_times_the_recorder_timeout(template: Template) -> None:
    source, _, _ = _queues(template)
    timeout = _recorder(template)["Properties"]["Timeout"]
    assert source["Properties"]["VisibilityTimeout"] == 6 * timeout == 180


def test_topic_is_encrypted_and_signs_with_sha256(template: Template) -> None:
    topic = _pipeline(template, "AWS::SNS::Topic", "Topic")
    key = topic["Properties"]["KmsMasterKeyId"]
    assert "alias/aws/sns" in str(key)
    assert topic["Properties"]["SignatureVersion"] == "2"


def test_both_queues_are_encrypted_with_sse_sqs(template: Template) -> None:
    # SNS cannot deliver to a queue encrypted with the AWS-managed alias/aws/sqs key.
    for queue in template.find_resources("AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        assert "KmsMasterKeyId" not in queue["Properties"]


def test_tables_are_encrypted_at_rest_with_kms(template: Template) -> None:
    tables = template.find_resources("AWS::DynamoDB::Table")
    assert len(tables) == 2  # the audit table and the digest table
    for table in tables.values():
        assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}


@pytest.mark.parametrize(
    ("policy_type", "target_type", "count"),
    [
        ("AWS::SNS::TopicPolicy", "AWS::SNS::Topic", 2),
        ("AWS::SQS::QueuePolicy", "AWS::SQS::Queue", 3),
    ],
)
def test_resource_policies_deny_requests_without_tls(
    template: Template, policy_type: str, target_type: str, count: int
) -> None:
    policies = template.find_resources(
        policy_type,
        {
            "Properties": {
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                }
            }
        },
    )
    assert len(policies) == count
    assert len(template.find_resources(target_type)) == count


def test_table_is_on_demand_with_point_in_time_recovery_and_deletion_protection(
    template: Template,
) -> None:
    for table in template.find_resources("AWS::DynamoDB::Table").values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["DeletionProtectionEnabled"] is True


def test_tables_survive_cdk_destroy(template: Template) -> None:
    for table in template.find_resources("AWS::DynamoDB::Table").values():
        assert table["DeletionPolicy"] == "Retain"
        assert table["UpdateReplacePolicy"] == "Retain"


def test_table_keys_serve_the_auditors_questions(template: Template) -> None:
    props = _table(template)["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "subject", "KeyType": "HASH"},
        {"AttributeName": "event_key", "KeyType": "RANGE"},
    ]
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "by-event-type-shard",
            "KeySchema": [
                {"AttributeName": "event_type_shard", "KeyType": "HASH"},
                {"AttributeName": "event_key", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]


# Every DynamoDB data-plane action that writes an item (the IAM actions DynamoDB authorises;
# TransactWriteItems is authorised as these per item).
_ITEM_WRITE_ACTIONS = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
}


@pytest.mark.parametrize(
    ("table_path", "writer_handler"),
    [
        ("Table", "audit_events.record_audit_event.handler"),
        ("SealingDigestTable", "audit_events.seal_records.handler"),
    ],
)
def test_table_resource_policy_denies_every_write_but_its_one_writers_append(
    template: Template, table_path: str, writer_handler: str
) -> None:
    props = _pipeline(template, "AWS::DynamoDB::Table", table_path)["Properties"]
    writer = _only(template, "AWS::Lambda::Function", {"Properties": {"Handler": writer_handler}})
    writer_role = writer["Properties"]["Role"]
    statements = props["ResourcePolicy"]["PolicyDocument"]["Statement"]
    assert all(s["Effect"] == "Deny" and s["Principal"] == {"AWS": "*"} for s in statements)
    # The shape a redaction must have (tests/infra/test_redaction_policy.py); with no
    # grant_redact, OnlyRedactorsUpdate denies UpdateItem to everyone.
    statements = [
        s
        for s in statements
        if s.get("Sid") not in {"UpdatesOnlyRedact", "RedactionsReturnNothing"}
    ]
    denied_to_all = {action for s in statements if "Condition" not in s for action in _actions(s)}
    denied_but_to_writer = [(_actions(s), s["Condition"]) for s in statements if "Condition" in s]
    if table_path == "Table":
        # The recorder's batched write (PartiQL INSERT, which never overwrites) is its alone;
        # PutItem names it in a list (the grant_redact roles join it, for stubs).
        assert denied_to_all == _ITEM_WRITE_ACTIONS - {"dynamodb:PutItem", "dynamodb:PartiQLInsert"}
        assert denied_but_to_writer == [
            (["dynamodb:PutItem"], {"ArnNotEquals": {"aws:PrincipalArn": [writer_role]}}),
            (["dynamodb:PartiQLInsert"], {"ArnNotEquals": {"aws:PrincipalArn": [writer_role]}}),
        ]
    else:
        assert denied_to_all == _ITEM_WRITE_ACTIONS - {"dynamodb:PutItem"}
        assert denied_but_to_writer == [
            (["dynamodb:PutItem"], {"ArnNotEquals": {"aws:PrincipalArn": writer_role}})
        ]


def _policy_statements(template: Template, role_logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_publisher_may_only_read_the_secret_and_publish_to_its_topic(template: Template) -> None:
    role_id = _publisher(template)["Properties"]["Role"]["Fn::GetAtt"][0]
    topic_id = _pipeline_id(template, "AWS::SNS::Topic", "Topic")
    statements = _policy_statements(template, role_id)
    data_statements = [
        s for s in statements if not any(a.startswith(("logs:", "xray:")) for a in _actions(s))
    ]
    assert data_statements == [
        {"Action": "sns:Publish", "Effect": "Allow", "Resource": {"Ref": topic_id}},
        _SECRET_LOOKUP(template),
    ]


def test_recorder_may_only_read_the_secret_consume_its_queue_and_put_items(
    template: Template,
) -> None:
    role_id = _recorder(template)["Properties"]["Role"]["Fn::GetAtt"][0]
    source_id = _pipeline_id(template, "AWS::SQS::Queue", "Queue")
    table_id = _pipeline_id(template, "AWS::DynamoDB::Table", "Table")
    statements = _policy_statements(template, role_id)
    data_statements = [
        s
        for s in statements
        if s["Effect"] == "Allow" and not any(a.startswith(("logs:", "xray:")) for a in _actions(s))
    ]
    # Its writes are also denied outside its own function (test_integrity_controls.py).
    assert [s["Sid"] for s in statements if s["Effect"] == "Deny"] == ["OnlyFromInsideTheFunction"]
    assert data_statements == [
        _SECRET_LOOKUP(template),
        {
            "Action": [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
            ],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [source_id, "Arn"]},
        },
        {
            # ConditionCheckItem writes nothing: a re-keyed event checks its producer's id.
            # PartiQLInsert: a batch's events in one request, each stored only if its key is new.
            "Action": [
                "dynamodb:ConditionCheckItem",
                "dynamodb:PartiQLInsert",
                "dynamodb:PutItem",
            ],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [table_id, "Arn"]},
        },
        {
            # The writer key: its MAC on each item is what the sealer asks for.
            "Action": "secretsmanager:GetSecretValue",
            "Effect": "Allow",
            "Resource": {"Ref": _pipeline_id(template, "AWS::SecretsManager::Secret", "WriterKey")},
        },
    ]


def _SECRET_LOOKUP(template: Template) -> dict[str, Any]:
    return {
        "Action": [
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
            "secretsmanager:ListSecretVersionIds",
        ],
        "Effect": "Allow",
        "Resource": {
            "Ref": _pipeline_id(template, "AWS::SecretsManager::Secret", "PseudonymSecret")
        },
    }


def test_pseudonym_secret_is_generated_at_deploy_time_and_retained(template: Template) -> None:
    secret = template.to_json()["Resources"][
        _pipeline_id(template, "AWS::SecretsManager::Secret", "PseudonymSecret")
    ]
    assert secret["Properties"]["GenerateSecretString"] == {
        "ExcludePunctuation": True,
        "IncludeSpace": False,
        "PasswordLength": 64,
    }
    assert "SecretString" not in secret["Properties"]
    assert secret["DeletionPolicy"] == secret["UpdateReplacePolicy"] == "Retain"


def test_only_granted_principals_may_read_the_pseudonym_secret(template: Template) -> None:
    secret_id = _pipeline_id(template, "AWS::SecretsManager::Secret", "PseudonymSecret")
    policy = _only(
        template,
        "AWS::SecretsManager::ResourcePolicy",
        {"Properties": {"SecretId": {"Ref": secret_id}}},
    )["Properties"]
    roles = [
        {"Fn::GetAtt": [function["Properties"]["Role"]["Fn::GetAtt"][0], "Arn"]}
        for function in (_publisher(template), _recorder(template))
    ]
    assert policy["SecretId"] == {"Ref": secret_id}
    statements = policy["ResourcePolicy"]["Statement"]
    # The other statement is the key's custody (test_integrity_controls.py).
    assert [s for s in statements if s["Sid"] != "OnlyCustodiansChangeThePseudonymKey"] == [
        {
            "Action": "secretsmanager:GetSecretValue",
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": roles}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": "*",
            "Sid": "OnlyGrantedPrincipalsReadThePseudonymKey",
        }
    ]


def test_only_the_recorder_and_the_sealer_may_read_the_writer_key(template: Template) -> None:
    key_id = _pipeline_id(template, "AWS::SecretsManager::Secret", "WriterKey")
    policy = _only(
        template,
        "AWS::SecretsManager::ResourcePolicy",
        {"Properties": {"SecretId": {"Ref": key_id}}},
    )["Properties"]
    sealer = _logical_id(
        template,
        "AWS::Lambda::Function",
        {"Properties": {"Handler": "audit_events.seal_records.handler"}},
    )
    roles = [
        {"Fn::GetAtt": [function["Properties"]["Role"]["Fn::GetAtt"][0], "Arn"]}
        for function in (_recorder(template), template.to_json()["Resources"][sealer])
    ]
    statements = {s["Sid"]: s for s in policy["ResourcePolicy"]["Statement"]}
    assert set(statements) == {"OnlyTheWritersReadTheWriterKey", "OnlyCustodiansChangeTheWriterKey"}
    assert statements["OnlyTheWritersReadTheWriterKey"] == {
        "Action": "secretsmanager:GetSecretValue",
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": roles}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": "*",
        "Sid": "OnlyTheWritersReadTheWriterKey",
    }
    for function in (_recorder(template), template.to_json()["Resources"][sealer]):
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["WRITER_KEY_SECRET_ARN"] == {"Ref": key_id}


def test_functions_get_the_secret_and_the_shard_count_from_the_template(
    template: Template,
) -> None:
    secret = {"Ref": _pipeline_id(template, "AWS::SecretsManager::Secret", "PseudonymSecret")}
    publisher = _publisher(template)["Properties"]["Environment"]["Variables"]
    recorder = _recorder(template)["Properties"]["Environment"]["Variables"]
    assert publisher["PSEUDONYM_SECRET_ARN"] == recorder["PSEUDONYM_SECRET_ARN"] == secret
    assert "SUBJECT_IN_CLEAR" not in publisher
    assert recorder["EVENT_TYPE_INDEX_SHARDS"] == "16"


def test_recorder_knows_the_one_topic_whose_signed_notifications_it_accepts(
    template: Template,
) -> None:
    topic = {"Ref": _pipeline_id(template, "AWS::SNS::Topic", "Topic")}
    recorder = _recorder(template)["Properties"]["Environment"]["Variables"]
    assert recorder["TOPIC_ARN"] == topic


def test_unverified_messages_raise_an_alarm(template: Template) -> None:
    alarms = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "UnverifiedMessages"}}
    )
    ((_, alarm),) = alarms.items()
    assert alarm["Properties"]["Threshold"] == 1
    assert alarm["Properties"]["Namespace"] == "AuditPipeline"


def test_functions_write_only_to_their_own_log_group(template: Template) -> None:
    for function in (_publisher(template), _recorder(template), _sealer(template)):
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        log_group = function["Properties"]["LoggingConfig"]["LogGroup"]
        log_statements = [
            s
            for s in _policy_statements(template, role_id)
            if any(a.startswith("logs:") for a in _actions(s))
        ]
        assert log_statements == [
            {
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [log_group["Ref"], "Arn"]},
            }
        ]


def test_no_principal_may_update_or_delete_audit_records(template: Template) -> None:
    # PartiQLInsert creates an item only where its key does not exist: it never changes one.
    forbidden = re.compile(
        r"^(dynamodb:(\*|Update.*|Delete.*|BatchWrite.*|PartiQL(?!Insert$).*|Put\*|.*\*)|\*)$"
    )
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            for action in _actions(statement):
                assert not forbidden.match(action), action
    assert template.find_resources("AWS::IAM::ManagedPolicy") == {}
    for role in template.find_resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_functions_run_the_newest_python_on_arm64_with_tracing(template: Template) -> None:
    newest = max(
        (name for name in dir(lambda_.Runtime) if re.fullmatch(r"PYTHON_3_\d+", name)),
        key=lambda name: int(name.rsplit("_", 1)[1]),
    )
    # No newer Python in aws-cdk-lib than ours (the lowest supported one has no PYTHON_3_14 yet).
    assert int(newest.rsplit("_", 1)[1]) <= int(RUNTIME.name.rsplit(".", 1)[1])
    for function in (_publisher(template), _recorder(template), _sealer(template)):
        props = function["Properties"]
        assert props["Runtime"] == RUNTIME.name
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogFormat"] == "JSON"


def test_only_the_recorder_leaves_out_lambdas_start_and_report_lines(template: Template) -> None:
    """The per-batch function writes no platform.start/platform.report (WARN); the publisher
    and the sealer keep Lambda's default (INFO)."""
    levels = {
        role: function["Properties"]["LoggingConfig"].get("SystemLogLevel", "INFO")
        for role, function in (
            ("publisher", _publisher(template)),
            ("recorder", _recorder(template)),
            ("sealer", _sealer(template)),
        )
    }
    assert levels == {"publisher": "INFO", "recorder": "WARN", "sealer": "INFO"}


def test_log_groups_are_explicit_with_retention(template: Template) -> None:
    groups = template.find_resources("AWS::Logs::LogGroup")
    assert len(groups) == 3
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == 365
        assert group["DeletionPolicy"] == "Retain"


def test_no_custom_resources_and_no_docker_assets(
    template: Template, template_json: dict[str, Any], cloud_assembly: Path
) -> None:
    types = {r["Type"] for r in template_json["Resources"].values()}
    assert not [t for t in types if t.startswith("Custom::")]
    assert "AWS::CloudFormation::CustomResource" not in types
    assets = json.loads((cloud_assembly / "AuditPipelineStack.assets.json").read_text())
    assert assets.get("dockerImages", {}) == {}
    assert [a["source"]["packaging"] for a in assets["files"].values()].count("zip") == 1


def test_recorder_event_source_reports_partial_batch_failures(template: Template) -> None:
    (mapping,) = [
        resource["Properties"]
        for resource in template.find_resources("AWS::Lambda::EventSourceMapping").values()
        if resource["Properties"]["FunctionName"]
        == {
            "Ref": _logical_id(
                template,
                "AWS::Lambda::Function",
                {"Properties": {"Handler": "audit_events.record_audit_event.handler"}},
            )
        }
    ]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 10
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 5}


def test_queue_subscribes_to_account_deleted_events_in_sns_envelopes(template: Template) -> None:
    subscription = _only(template, "AWS::SNS::Subscription")["Properties"]
    assert subscription["Protocol"] == "sqs"
    assert subscription["RawMessageDelivery"] is False
    # AuditRecordRedacted: the built-in redaction entries (audit redact) reach the recorder too.
    assert subscription["FilterPolicy"] == {"event_type": ["AccountDeleted", "AuditRecordRedacted"]}


def test_powertools_layer_matches_the_pinned_library(template_json: dict[str, Any]) -> None:
    pinned = re.search(
        r"^aws-lambda-powertools==(\S+)$",
        (ROOT / "requirements-dev.txt").read_text(),
        re.MULTILINE,
    )
    assert pinned is not None
    assert POWERTOOLS_VERSION == pinned.group(1) == version("aws-lambda-powertools")
    parameter_paths = [p.get("Default") for p in template_json["Parameters"].values()]
    assert (
        f"/aws/service/powertools/python/arm64/{RUNTIME.name}/{POWERTOOLS_VERSION}"
        in parameter_paths
    )


def test_stack_outputs_name_every_resource_an_operator_needs(
    template_json: dict[str, Any],
) -> None:
    assert (
        set(template_json["Outputs"])
        == {*outputs.ALL, *outputs.OPTIONAL}
        == {
            "PseudonymSecretArn",
            "EventTypeIndexShards",
            "TopicArn",
            "QueueUrl",
            "DeadLetterQueueUrl",
            "TableName",
            "PublisherFunctionName",
            "RecorderFunctionName",
            "SealerFunctionName",
            "DigestTableName",
            "SigningKeyArn",
            "AlarmTopicArn",
        }
    )


def _alarm(template: Template, metric_name: str, dimension: str | None = None) -> dict[str, Any]:
    """The alarm on ``metric_name``, of the resource whose logical id is ``dimension``."""
    found = [
        alarm
        for alarm in template.find_resources(
            "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": metric_name}}
        ).values()
        if dimension is None or dimension in json.dumps(alarm["Properties"]["Dimensions"])
    ]
    assert len(found) == 1, found
    return dict(found[0])


def _depth_alarm(template: Template, queue_id: str) -> dict[str, Any]:
    """The alarm on a queue's visible + in-flight messages (a metric math expression)."""
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        metrics = alarm["Properties"].get("Metrics", [])
        if queue_id in json.dumps(metrics):
            return dict(alarm)
    raise AssertionError(f"no depth alarm for {queue_id}")


@pytest.mark.parametrize("queue_path", ["DeadLetterQueue", "SubscriptionDeadLetterQueue"])
def test_alarm_when_any_message_is_in_a_dead_letter_queue_visible_or_in_flight(
    template: Template, queue_path: str
) -> None:
    queue_id = _pipeline_id(template, "AWS::SQS::Queue", queue_path)
    props = _depth_alarm(template, queue_id)["Properties"]
    expression, *inputs = props["Metrics"]
    assert expression["Expression"] == "visible + inflight"
    stats = {
        m["Id"]: (m["MetricStat"]["Metric"]["MetricName"], m["MetricStat"]["Stat"]) for m in inputs
    }
    assert stats == {
        "visible": ("ApproximateNumberOfMessagesVisible", "Maximum"),
        "inflight": ("ApproximateNumberOfMessagesNotVisible", "Maximum"),
    }
    for metric in inputs:
        assert metric["MetricStat"]["Metric"]["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
        ]
        assert metric["MetricStat"]["Period"] == 60
    assert (props["Threshold"], props["ComparisonOperator"], props["EvaluationPeriods"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
        1,
    )
    assert props["TreatMissingData"] == "notBreaching"


def test_topic_subscription_has_a_dead_letter_queue(template: Template) -> None:
    subscription = _only(template, "AWS::SNS::Subscription")["Properties"]
    dlq_id = _pipeline_id(template, "AWS::SQS::Queue", "SubscriptionDeadLetterQueue")
    assert subscription["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}}


def test_alarm_when_the_oldest_queued_message_is_fifteen_minutes_old(template: Template) -> None:
    queue_id = _pipeline_id(template, "AWS::SQS::Queue", "Queue")
    props = _alarm(template, "ApproximateAgeOfOldestMessage", queue_id)["Properties"]
    assert (props["Threshold"], props["Period"], props["Statistic"]) == (900, 60, "Maximum")


def test_alarm_when_records_wait_more_than_two_seal_intervals(template: Template) -> None:
    sealer_id = _logical_id(
        template,
        "AWS::Lambda::Function",
        {"Properties": {"Handler": "audit_events.seal_records.handler"}},
    )
    # How old the stream's newest record was when the sealer took it (milliseconds).
    props = _alarm(template, "IteratorAge", sealer_id)["Properties"]
    assert (props["Threshold"], props["Period"], props["Statistic"]) == (
        (2 * 300 + 300) * 1000,
        60,
        "Maximum",
    )


@pytest.mark.parametrize(
    ("metric_name", "handler"),
    [
        ("Errors", "audit_events.record_audit_event.handler"),
        ("Throttles", "audit_events.record_audit_event.handler"),
        ("Errors", "audit_events.delete_account.handler"),
        ("Errors", "audit_events.seal_records.handler"),
    ],
)
def test_alarm_on_any_function_error_or_recorder_throttle(
    template: Template, metric_name: str, handler: str
) -> None:
    function_id = _logical_id(
        template, "AWS::Lambda::Function", {"Properties": {"Handler": handler}}
    )
    props = _alarm(template, metric_name, function_id)["Properties"]
    assert props["Namespace"] == "AWS/Lambda"
    assert props["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    assert (props["Threshold"], props["Period"], props["Statistic"]) == (1, 300, "Sum")


def test_alarm_on_any_record_the_sealer_finds_tampered(template: Template) -> None:
    props = _alarm(template, "TamperedAuditRecords")["Properties"]
    assert (props["Namespace"], props["Threshold"], props["Statistic"]) == (
        "AuditPipeline",
        1,
        "Sum",
    )


def test_every_alarm_and_its_return_to_ok_reach_the_stacks_alarm_topic(
    template: Template,
) -> None:
    alarm_topic = _logical_id(
        template, "AWS::SNS::Topic", {"Properties": {"DisplayName": "Audit pipeline alarms"}}
    )
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == 14
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": alarm_topic}]
        assert alarm["Properties"]["OKActions"] == [{"Ref": alarm_topic}]
    assert template.find_resources("AWS::CloudWatch::Dashboard") == {}


# -- loss is detectable (docs/INTEGRITY.md, layer 3) -----------------------------------------


def _named_alarm(template: Template, construct_id: str) -> dict[str, Any]:
    found = [
        alarm["Properties"]
        for alarm in template.find_resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["AlarmName"].endswith(f"-{construct_id}")
    ]
    assert len(found) == 1, found
    return dict(found[0])


def test_an_event_type_the_queue_filters_out_raises_an_alarm(template: Template) -> None:
    props = _named_alarm(template, "NotificationsFilteredOutAlarm")
    topic_id = _pipeline_id(template, "AWS::SNS::Topic", "Topic")
    assert (props["Namespace"], props["MetricName"]) == (
        "AWS/SNS",
        "NumberOfNotificationsFilteredOut",
    )
    assert props["Dimensions"] == [
        {"Name": "TopicName", "Value": {"Fn::GetAtt": [topic_id, "TopicName"]}}
    ]
    assert (props["Threshold"], props["Statistic"], props["ComparisonOperator"]) == (
        1,
        "Sum",
        "GreaterThanOrEqualToThreshold",
    )


def test_events_published_but_never_recorded_raise_an_alarm_within_fifteen_minutes(
    template: Template,
) -> None:
    props = _named_alarm(template, "UnaccountedEventsAlarm")
    queries = {query["Id"]: query for query in props["Metrics"]}
    expression = next(q["Expression"] for q in queries.values() if "Expression" in q)
    # Published, minus everything that accounts for an event.
    assert expression.startswith("FILL(published, 0) - (")
    for name in ("filtered", "failed", "recorded", "duplicates", "poison"):
        assert f"FILL({name}, 0)" in expression
    metrics = {
        query_id: query["MetricStat"]["Metric"]["MetricName"]
        for query_id, query in queries.items()
        if "MetricStat" in query
    }
    assert metrics == {
        "published": "NumberOfMessagesPublished",
        "filtered": "NumberOfNotificationsFilteredOut",
        "failed": "NumberOfNotificationsFailed",
        "recorded": "AuditEventsRecorded",
        "duplicates": "DuplicateAuditEventsSkipped",
        "poison": "PoisonMessages",
    }
    assert all(q["MetricStat"]["Period"] == 300 for q in queries.values() if "MetricStat" in q)
    # Three 5-minute periods in a row: a batch recorded across a period boundary never alarms.
    assert (props["EvaluationPeriods"], props["Threshold"]) == (3, 1)
    assert props["TreatMissingData"] == "notBreaching"


def test_no_digest_for_longer_than_the_heartbeat_raises_an_alarm_even_without_data(
    template: Template,
) -> None:
    props = _named_alarm(template, "DigestsStoppedAlarm")
    assert (props["Namespace"], props["MetricName"]) == ("AuditPipeline", "AuditDigestsWritten")
    # The heartbeat (1 hour) plus one seal interval (5 minutes).
    assert props["Period"] == 3600 + 300
    assert (props["ComparisonOperator"], props["Threshold"]) == ("LessThanThreshold", 1)
    assert props["TreatMissingData"] == "breaching"


def test_the_digest_alarm_period_stays_within_a_day_for_the_longest_seal_interval() -> None:
    stack = cdk.Stack(cdk.App(), "Other")
    AuditPipeline(stack, "Audit", seal_interval=cdk.Duration.days(1))
    alarms = Template.from_stack(stack).find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "AuditDigestsWritten"}}
    )
    assert [alarm["Properties"]["Period"] for alarm in alarms.values()] == [86_400]
