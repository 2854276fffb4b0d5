"""Who may write the audit log, checked on the synthesized policies as AWS evaluates them.

The policies go through the project's one policy evaluator (``audit_stack.iam``), the same one
the emulator enforces with: explicit denies anywhere win, and a request is allowed by the
caller's identity policy or a resource policy naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Annotations, Match, Template

from audit_stack import AuditPipeline, AuditStack
from audit_stack.iam import Decision, Request, evaluate

pytestmark = pytest.mark.synth  # in-process CDK apps: `make test`, not `make unit`

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "111122223333"
REGION = "eu-west-1"
OPERATOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/AuditOperator"


def _app(**context: Any) -> cdk.App:
    """An app with the feature flags of cdk.json (those `cdk init` writes), like users build."""
    flags = json.loads((ROOT / "cdk.json").read_text())["context"]
    # Path metadata names each resource by construct path, as `cdk synth` does.
    return cdk.App(context={**flags, "aws:cdk:enable-path-metadata": True, **context})


@pytest.fixture(scope="module")
def stack() -> AuditStack:
    app = _app(redrive_role_arn=OPERATOR_ROLE, alarm_email="oncall@example.com")
    return AuditStack(app, "Audit", env=cdk.Environment(account=ACCOUNT, region=REGION))


@pytest.fixture(scope="module")
def template(stack: AuditStack) -> dict[str, Any]:
    return dict(Template.from_stack(stack).to_json())


# -- the policies through the project's evaluator ------------------------------------------------

_ADMINISTRATOR_ACCESS = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
_DECISIONS = {
    Decision.EXPLICIT_DENY: "denied",
    Decision.ALLOWED: "allowed",
    Decision.IMPLICIT_DENY: "not allowed",
}


def _physical(template: dict[str, Any], value: Any) -> Any:
    """Resolve Ref/GetAtt to ARNs shaped like the real ones (the logical id is the name)."""
    if isinstance(value, list):
        return [_physical(template, item) for item in value]
    if isinstance(value, dict):
        if "Ref" in value or "Fn::GetAtt" in value:
            logical_id = value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]
            kind = template["Resources"][logical_id]["Type"].split("::")[1].lower()
            if kind == "iam":  # IAM ARNs have no region
                return f"arn:aws:iam::{ACCOUNT}:role/{logical_id}"
            return f"arn:aws:{kind}:{REGION}:{ACCOUNT}:{logical_id}"
        return {key: _physical(template, item) for key, item in value.items()}
    return value


def decide(
    template: dict[str, Any],
    statements: list[dict[str, Any]],
    action: str,
    caller: tuple[str, str],
    request: dict[str, str],
    *,
    identity_allows: bool,
) -> str:
    """ "denied" (explicit), "allowed", or "not allowed" for one request by ``caller``
    (``("AWS", role ARN)`` or ``("Service", "sns.amazonaws.com")``) to the resource whose
    policy is ``statements``; ``identity_allows``: the caller's IAM policy allows everything."""
    statements = _physical(template, statements)
    resources = [
        resource
        for statement in statements
        for resource in (
            statement.get("Resource", [])
            if isinstance(statement.get("Resource"), list)
            else [statement.get("Resource", "*")]
        )
    ]
    # The resource the policy is attached to: the one its statements name ("*" in a table's).
    resource = next((r for r in resources if r != "*"), f"arn:aws:resource:{REGION}:{ACCOUNT}:it")
    evaluation = evaluate(
        Request(caller[1], action, resource, request),
        identity_policies=[_ADMINISTRATOR_ACCESS] if identity_allows else [],
        resource_policy={"Statement": statements},
        resource_account=ACCOUNT,
        key_policy=action.startswith("kms:"),
    )
    return _DECISIONS[evaluation.decision]


def _resource(template: dict[str, Any], path: str) -> tuple[str, dict[str, Any]]:
    for logical_id, resource in template["Resources"].items():
        if resource.get("Metadata", {}).get("aws:cdk:path") == f"Audit/Audit/{path}":
            return logical_id, resource
    raise AssertionError(f"no resource at Audit/Audit/{path}")


def _queue_policy(template: dict[str, Any], queue_path: str) -> list[dict[str, Any]]:
    queue_id, _ = _resource(template, f"{queue_path}/Resource")
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::SQS::QueuePolicy" and resource["Properties"]["Queues"] == [
            {"Ref": queue_id}
        ]:
            return list(resource["Properties"]["PolicyDocument"]["Statement"])
    raise AssertionError(f"no policy for {queue_path}")


def _role_arn(template: dict[str, Any], function_path: str) -> str:
    role_id, _ = _resource(template, f"{function_path}Role/Resource")
    return str(_physical(template, {"Ref": role_id}))


def _topic_arn(template: dict[str, Any]) -> str:
    topic_id, _ = _resource(template, "Topic/Resource")
    return str(_physical(template, {"Ref": topic_id}))


TLS = {"aws:SecureTransport": "true"}


# -- only the topic feeds the queue ----------------------------------------------------------


def test_a_forged_message_from_a_principal_of_the_account_is_denied_by_the_queue_policy(
    template: dict[str, Any],
) -> None:
    statements = _queue_policy(template, "Queue")
    application_role = f"arn:aws:iam::{ACCOUNT}:role/SomeApplication"
    # The role holds sqs:SendMessage in its own IAM policy; the queue policy still says no.
    assert (
        decide(
            template,
            statements,
            "sqs:SendMessage",
            ("AWS", application_role),
            {**TLS, "aws:PrincipalArn": application_role},
            identity_allows=True,
        )
        == "denied"
    )


def test_the_pipelines_topic_may_deliver_to_the_queue_and_no_other_topic_may(
    template: dict[str, Any],
) -> None:
    statements = _queue_policy(template, "Queue")
    sns = ("Service", "sns.amazonaws.com")
    ours = {**TLS, "aws:SourceArn": _topic_arn(template)}
    other = {**TLS, "aws:SourceArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:SomeOtherTopic"}
    assert decide(template, statements, "sqs:SendMessage", sns, ours, identity_allows=False) == (
        "allowed"
    )
    assert decide(template, statements, "sqs:SendMessage", sns, other, identity_allows=False) == (
        "denied"
    )


def test_a_role_granted_redrive_may_send_to_the_queue_and_is_granted_the_move(
    template: dict[str, Any],
) -> None:
    statements = _queue_policy(template, "Queue")
    request = {**TLS, "aws:PrincipalArn": OPERATOR_ROLE}
    caller = ("AWS", OPERATOR_ROLE)
    assert (
        decide(template, statements, "sqs:SendMessage", caller, request, identity_allows=True)
        == "allowed"
    )
    # Over plain HTTP, even the operator is refused.
    plain = {"aws:SecureTransport": "false", "aws:PrincipalArn": OPERATOR_ROLE}
    assert (
        decide(template, statements, "sqs:SendMessage", caller, plain, identity_allows=True)
        == "denied"
    )


def test_grant_redrive_gives_the_message_move_permissions(stack: AuditStack) -> None:
    app = _app()
    other = cdk.Stack(app, "Other", env=cdk.Environment(account=ACCOUNT, region=REGION))
    pipeline = AuditPipeline(other, "Audit")
    operator = iam.Role(other, "Operator", assumed_by=iam.AccountRootPrincipal())
    pipeline.grant_redrive(operator)
    template = Template.from_stack(other)
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": Match.string_like_regexp("Operator")}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": Match.array_with(
                                    ["sqs:ReceiveMessage", "sqs:StartMessageMoveTask"]
                                ),
                                "Effect": "Allow",
                            }
                        ),
                        Match.object_like({"Action": "sqs:SendMessage", "Effect": "Allow"}),
                    ]
                )
            },
        },
    )
    policy = dict(template.to_json())
    statements = _queue_policy_any(policy)
    operator_id = next(k for k in policy["Resources"] if k.startswith("Operator"))
    deny = next(s for s in statements if s.get("Sid") == "OnlyTheTopicOrARedriveSends")
    assert deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == [
        {"Fn::GetAtt": [operator_id, "Arn"]}
    ]


def _queue_policy_any(template: dict[str, Any]) -> list[dict[str, Any]]:
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::SQS::QueuePolicy":
            statements = resource["Properties"]["PolicyDocument"]["Statement"]
            if any(s.get("Sid") == "OnlyTheTopicOrARedriveSends" for s in statements):
                return list(statements)
    raise AssertionError("no queue policy with the topic-only statement")


def test_grant_redrive_refuses_a_grantee_without_an_arn() -> None:
    stack = cdk.Stack(_app(), "Other")
    pipeline = AuditPipeline(stack, "Audit")
    with pytest.raises(ValueError, match="AuditPipeline grant_redrive: the grantee must be"):
        pipeline.grant_redrive(iam.ServicePrincipal("ecs-tasks.amazonaws.com"))


def test_the_tables_stream_feeds_the_sealer_every_write_in_order_and_never_skips_one(
    template: dict[str, Any],
) -> None:
    table_id, resource = _resource(template, "Table/Resource")
    table = resource["Properties"]
    # New and old images: a change or deletion of a record reaches the sealer with both.
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    (mapping,) = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and resource["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
    ]
    sealer, _ = _resource(template, "SealerFunction/Resource")
    assert mapping["FunctionName"] == {"Ref": sealer}
    assert mapping["StartingPosition"] == "TRIM_HORIZON"  # from the first record kept
    assert mapping["MaximumBatchingWindowInSeconds"] == 300  # the default seal interval
    assert mapping["BatchSize"] == 10_000
    # Retried until it succeeds: no retry limit, no age limit, no bisecting, no skipping to an
    # on-failure destination.
    for skipping in (
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
        "BisectBatchOnFunctionError",
        "DestinationConfig",
        "FunctionResponseTypes",
        "FilterCriteria",
    ):
        assert skipping not in mapping, skipping


def test_the_recorder_sends_nothing_but_its_writes(template: dict[str, Any]) -> None:
    recorder_role, _ = _resource(template, "RecordAuditEventFunctionRole/Resource")
    actions = {
        action
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": recorder_role} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert not {action for action in actions if action.startswith(("sqs:Send", "sns:"))}


# -- only the recorder writes ----------------------------------------------------------------

_WRITES = [
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
]


@pytest.mark.parametrize(
    ("table_path", "writer"),
    [("Table", "RecordAuditEventFunction"), ("Sealing/DigestTable", "SealerFunction")],
)
@pytest.mark.parametrize("action", _WRITES)
def test_every_write_path_is_denied_to_an_administrator_and_only_appends_are_left_to_the_writer(
    template: dict[str, Any], table_path: str, writer: str, action: str
) -> None:
    """PutItem, and on the audit table the recorder's PartiQL INSERT (which never overwrites)."""
    _, table = _resource(template, f"{table_path}/Resource")
    statements = table["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"]
    administrator = f"arn:aws:iam::{ACCOUNT}:role/Administrator"
    writer_arn = _role_arn(template, writer)

    def as_(role: str) -> str:
        request = {"aws:PrincipalArn": role}
        return decide(template, statements, action, ("AWS", role), request, identity_allows=True)

    assert as_(administrator) == "denied"
    appends = {"dynamodb:PutItem"} | (
        {"dynamodb:PartiQLInsert"} if table_path == "Table" else set()
    )
    assert as_(writer_arn) == ("allowed" if action in appends else "denied")


# -- sealing ---------------------------------------------------------------------------------


def test_only_the_sealer_may_sign_with_the_signing_key(template: dict[str, Any]) -> None:
    key_id, key = _resource(template, "Sealing/SigningKey/Resource")
    assert key["Properties"]["KeySpec"] == "ECC_NIST_P256"
    assert key["Properties"]["KeyUsage"] == "SIGN_VERIFY"
    assert key["DeletionPolicy"] == "Retain"
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    sealer = _role_arn(template, "SealerFunction")
    root = f"arn:aws:iam::{ACCOUNT}:root"
    for caller, expected in ((sealer, "allowed"), (root, "denied")):
        request = {"aws:PrincipalArn": caller}
        assert (
            decide(template, statements, "kms:Sign", ("AWS", caller), request, identity_allows=True)
            == expected
        )
    signers = [
        policy["Properties"]["Roles"]
        for policy in template["Resources"].values()
        if policy["Type"] == "AWS::IAM::Policy"
        and any(
            statement["Effect"] == "Allow" and "kms:Sign" in json.dumps(statement["Action"])
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        )
    ]
    sealer_role_id, _ = _resource(template, "SealerFunctionRole/Resource")
    assert signers == [[{"Ref": sealer_role_id}]]
    del key_id


def test_the_sealer_runs_every_five_minutes_by_default(template: dict[str, Any]) -> None:
    _, rule = _resource(template, "Sealing/Schedule/Resource")
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    sealer_id, _ = _resource(template, "SealerFunction/Resource")
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [sealer_id, "Arn"]}


def test_seal_interval_sets_the_schedule_the_batching_window_and_the_stalled_alarm() -> None:
    stack = cdk.Stack(_app(), "Other")
    AuditPipeline(stack, "Audit", seal_interval=cdk.Duration.minutes(2))
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(2 minutes)"})
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"MaximumBatchingWindowInSeconds": 120, "StartingPosition": "TRIM_HORIZON"},
    )
    # IteratorAge is in milliseconds.
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "IteratorAge", "Threshold": (2 * 120 + 300) * 1000},
    )


def test_a_seal_interval_over_five_minutes_keeps_lambdas_longest_batching_window() -> None:
    stack = cdk.Stack(_app(), "Other")
    AuditPipeline(stack, "Audit", seal_interval=cdk.Duration.hours(1))
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(1 hour)"})
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping", {"MaximumBatchingWindowInSeconds": 300}
    )


# -- alarms that reach someone ---------------------------------------------------------------


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(template: dict[str, Any]) -> None:
    topic = next(
        resource
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::SNS::Topic"
        and resource["Properties"].get("DisplayName") == "Audit pipeline alarms"
    )
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = template["Resources"][key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    request = {"aws:SourceAccount": ACCOUNT}
    cloudwatch = ("Service", "cloudwatch.amazonaws.com")
    for action in ("kms:GenerateDataKey*", "kms:Decrypt"):
        assert decide(template, statements, action, cloudwatch, request, identity_allows=False) == (
            "allowed"
        )


def test_alarm_email_from_context_subscribes_to_the_alarm_topic(template: dict[str, Any]) -> None:
    emails = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::SNS::Subscription"
        and resource["Properties"]["Protocol"] == "email"
    ]
    assert [e["Endpoint"] for e in emails] == ["oncall@example.com"]


def test_a_pipeline_without_an_alarm_action_warns_at_synthesis() -> None:
    stack = cdk.Stack(_app(), "Other")
    AuditPipeline(stack, "Audit")
    Annotations.from_stack(stack).has_warning(
        "/Other/Audit", Match.string_like_regexp("has no alarm_action")
    )


def test_audit_stack_wires_its_alarm_topic_so_nothing_warns(stack: AuditStack) -> None:
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp(".*"))
    assert [w for w in warnings if "alarm_action" in json.dumps(w.entry.data)] == []


def test_changes_to_the_logs_controls_raise_an_alarm(template: dict[str, Any]) -> None:
    # Coverage per call and name form: tests/infra/test_control_rules.py.
    rules = {
        resource["Properties"]["Name"]: resource
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Events::Rule"
        and "ControlChange" in resource["Metadata"]["aws:cdk:path"]
    }
    for rule in rules.values():
        assert rule["Properties"]["EventPattern"]["detail-type"] == ["AWS API Call via CloudTrail"]
    watched = json.dumps([rule["Properties"]["EventPattern"] for rule in rules.values()])
    for path in ("Table/Resource", "Sealing/DigestTable/Resource", "Sealing/SigningKey/Resource"):
        assert _resource(template, path)[0] in watched
    alarm = next(
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"]["AlarmName"].endswith("-ControlChangedAlarm")
    )
    summed = {
        query["MetricStat"]["Metric"]["Dimensions"][0]["Value"]
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }
    assert summed == set(rules)
    assert alarm["Threshold"] == 1


# -- integrity v2: only granted producers publish, only the consumers receive ----------------
# (docs/INTEGRITY.md, layer 1; the evaluator above, on the synthesized policies)

ADMINISTRATOR = f"arn:aws:iam::{ACCOUNT}:role/Administrator"
DEPLOYMENT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-{REGION}"


def _subbed(value: Any) -> Any:
    """Fn::Sub of the pseudo parameters the policies use (the deployment role's ARN)."""
    if isinstance(value, list):
        return [_subbed(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"}:
            return str(value["Fn::Sub"]).replace("${AWS::Partition}", "aws")
        return {key: _subbed(item) for key, item in value.items()}
    return value


def _topic_policy(template: dict[str, Any]) -> list[dict[str, Any]]:
    topic_id, _ = _resource(template, "Topic/Resource")
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::SNS::TopicPolicy" and resource["Properties"]["Topics"] == [
            {"Ref": topic_id}
        ]:
            return list(_subbed(resource["Properties"]["PolicyDocument"]["Statement"]))
    raise AssertionError("no policy for the audit topic")


def _as(
    template: dict[str, Any],
    statements: list[dict[str, Any]],
    action: str,
    principal_arn: str,
    **context: str,
) -> str:
    request = {**TLS, "aws:PrincipalArn": principal_arn, **context}
    return decide(
        template, statements, action, ("AWS", principal_arn), request, identity_allows=True
    )


def test_a_forged_publish_by_a_principal_not_granted_is_denied_by_the_topic_policy(
    template: dict[str, Any],
) -> None:
    statements = _topic_policy(template)
    publisher = _role_arn(template, "DeleteAccountFunction")
    # Both hold sns:Publish in their IAM policies; only the granted one gets through.
    assert _as(template, statements, "sns:Publish", ADMINISTRATOR) == "denied"
    assert _as(template, statements, "sns:Publish", publisher) == "allowed"


def test_allow_publishers_lets_the_listed_accounts_publish_and_still_denies_others() -> None:
    stack = cdk.Stack(_app(), "Other", env=cdk.Environment(account=ACCOUNT, region=REGION))
    pipeline = AuditPipeline(stack, "Audit")
    pipeline.allow_publishers(accounts=["444455556666"], organization_id="o-a1b2c3d4e5")
    service = iam.Role(stack, "Service", assumed_by=iam.AccountRootPrincipal())
    pipeline.grant_publish(service)
    template = dict(Template.from_stack(stack).to_json())
    statements = next(
        list(resource["Properties"]["PolicyDocument"]["Statement"])
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::SNS::TopicPolicy"
    )
    workload = "arn:aws:iam::444455556666:role/Workload"
    member = "arn:aws:iam::777788889999:role/Member"
    stranger = "arn:aws:iam::999999999999:role/Stranger"
    granted = str(_physical(template, {"Fn::GetAtt": [_logical("Service", template), "Arn"]}))

    def publish(arn: str, **context: str) -> str:
        return _as(template, statements, "sns:Publish", arn, **context)

    assert publish(workload, **{"aws:PrincipalAccount": "444455556666"}) == "allowed"
    assert (
        publish(
            member, **{"aws:PrincipalAccount": "777788889999", "aws:PrincipalOrgID": "o-a1b2c3d4e5"}
        )
        == "allowed"
    )
    assert publish(stranger, **{"aws:PrincipalAccount": "999999999999"}) == "denied"
    assert publish(granted, **{"aws:PrincipalAccount": ACCOUNT}) == "allowed"
    assert publish(ADMINISTRATOR, **{"aws:PrincipalAccount": ACCOUNT}) == "denied"


def _logical(prefix: str, template: dict[str, Any]) -> str:
    return next(
        str(logical_id)
        for logical_id, resource in template["Resources"].items()
        if logical_id.startswith(prefix) and resource["Type"] == "AWS::IAM::Role"
    )


def test_grant_publish_refuses_a_grantee_the_topic_policy_cannot_name() -> None:
    stack = cdk.Stack(_app(), "Other")
    pipeline = AuditPipeline(stack, "Audit")
    with pytest.raises(ValueError, match="AuditPipeline grant_publish: the grantee must be"):
        pipeline.grant_publish(iam.ServicePrincipal("ecs-tasks.amazonaws.com"))


@pytest.mark.parametrize(
    "action",
    [
        "sns:Subscribe",
        "sns:SetTopicAttributes",
        "sns:RemovePermission",
        "sns:AddPermission",
        "sns:DeleteTopic",
    ],
)
def test_only_the_deployment_role_may_change_the_topic_or_subscribe_to_it(
    template: dict[str, Any], action: str
) -> None:
    statements = _topic_policy(template)
    assert _as(template, statements, action, ADMINISTRATOR) == "denied"
    assert _as(template, statements, action, DEPLOYMENT_ROLE) == "allowed"


@pytest.mark.parametrize(
    "action",
    ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:PurgeQueue"],
)
@pytest.mark.parametrize(
    ("queue_path", "consumer"),
    [("Queue", "RecordAuditEventFunction")],
)
def test_an_administrator_cannot_receive_or_delete_audit_messages_only_the_consumer_can(
    template: dict[str, Any], queue_path: str, consumer: str, action: str
) -> None:
    statements = _queue_policy(template, queue_path)
    assert _as(template, statements, action, ADMINISTRATOR) == "denied"
    # The event source mapping polls with the recorder's role outside the function: no
    # lambda:SourceFunctionArn in its requests, and the queue policy does not ask for one.
    assert _as(template, statements, action, _role_arn(template, consumer)) == "allowed"


# -- integrity v2: writers bound to their functions ------------------------------------------


def _identity_policies(template: dict[str, Any], function_path: str) -> list[dict[str, Any]]:
    """The IAM policies attached to a function's role, resolved like the resource policies."""
    role_id, _ = _resource(template, f"{function_path}Role/Resource")
    return [
        _physical(template, resource["Properties"]["PolicyDocument"])
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role_id} in resource["Properties"]["Roles"]
    ]


def _function_arn(template: dict[str, Any], function_path: str) -> str:
    function_id, _ = _resource(template, f"{function_path}/Resource")
    return str(_physical(template, {"Fn::GetAtt": [function_id, "Arn"]}))


@pytest.mark.parametrize(
    ("writer", "table_path", "action", "resource_policy"),
    [
        ("RecordAuditEventFunction", "Table", "dynamodb:PutItem", "table"),
        ("RecordAuditEventFunction", "Table", "dynamodb:PartiQLInsert", "table"),
        ("SealerFunction", "Sealing/DigestTable", "dynamodb:PutItem", "table"),
        ("SealerFunction", "Sealing/SigningKey", "kms:Sign", "key"),
    ],
)
def test_a_session_of_a_writer_role_outside_its_function_may_not_write_or_sign(
    template: dict[str, Any], writer: str, table_path: str, action: str, resource_policy: str
) -> None:
    logical_id, resource = _resource(template, f"{table_path}/Resource")
    if resource_policy == "table":
        policy = resource["Properties"]["ResourcePolicy"]["PolicyDocument"]
    else:
        policy = resource["Properties"]["KeyPolicy"]
    target = str(_physical(template, {"Fn::GetAtt": [logical_id, "Arn"]}))
    identity = _identity_policies(template, writer)
    role = _role_arn(template, writer)
    inside = _function_arn(template, writer)
    intruder = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Intruder"

    def call(**context: str) -> str:
        # The writer's own IAM policies as identity policies, the table's or key's as the
        # resource's: evaluated together as AWS does (audit_stack.iam).
        request = {**TLS, "aws:PrincipalArn": role, **context}
        evaluation = evaluate(
            Request(role, action, target, request),
            identity_policies=identity,
            resource_policy=_physical(template, policy),
            resource_account=ACCOUNT,
            key_policy=action.startswith("kms:"),
        )
        return _DECISIONS[evaluation.decision]

    assert call(**{"lambda:SourceFunctionArn": inside}) == "allowed"
    # Another function created or reconfigured with the role (CreateFunction + PassRole).
    assert call(**{"lambda:SourceFunctionArn": intruder}) == "denied"
    # A session of the role outside any function has no lambda:SourceFunctionArn.
    assert call() == "denied"


# -- custody of the pseudonym key (issue 18, key custody) ------------------------------------

BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/AuditKeyCustodian"


def _secret_policy(
    template: dict[str, Any], secret: str = "PseudonymSecret"
) -> list[dict[str, Any]]:
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::SecretsManager::ResourcePolicy" and secret in json.dumps(
            resource["Properties"]["SecretId"]
        ):
            return list(_subbed(resource["Properties"]["ResourcePolicy"]["Statement"]))
    raise AssertionError(f"no resource policy on the {secret}")


def test_only_the_recorder_and_the_sealer_read_the_writer_key() -> None:
    app = _app()
    stack = AuditStack(app, "Audit", env=cdk.Environment(account=ACCOUNT, region=REGION))
    template = dict(Template.from_stack(stack).to_json())
    statements = _secret_policy(template, "WriterKey")
    read = "secretsmanager:GetSecretValue"
    # An administrator who could read it could MAC an item of their own making.
    assert _as(template, statements, read, ADMINISTRATOR) == "denied"
    assert _as(template, statements, read, _role_arn(template, "DeleteAccountFunction")) == "denied"
    for writer in ("RecordAuditEventFunction", "SealerFunction"):
        assert _as(template, statements, read, _role_arn(template, writer)) == "allowed"
    # And nobody but the deployment replaces it.
    assert _as(template, statements, "secretsmanager:PutSecretValue", ADMINISTRATOR) == "denied"
    assert _as(template, statements, "secretsmanager:PutSecretValue", DEPLOYMENT_ROLE) == "allowed"


@pytest.mark.parametrize(
    "action",
    [
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecret",
        "secretsmanager:RotateSecret",
        "secretsmanager:PutResourcePolicy",
        "secretsmanager:DeleteResourcePolicy",
        "secretsmanager:DeleteSecret",
    ],
)
def test_only_the_key_custodian_and_the_deployment_replace_or_expose_the_pseudonym_key(
    action: str,
) -> None:
    app = _app(key_custodian_role_arn=BREAK_GLASS)
    stack = AuditStack(app, "Audit", env=cdk.Environment(account=ACCOUNT, region=REGION))
    template = dict(Template.from_stack(stack).to_json())
    statements = _secret_policy(template)
    publisher = _role_arn(template, "DeleteAccountFunction")

    assert _as(template, statements, action, ADMINISTRATOR) == "denied"
    assert _as(template, statements, action, publisher) == "denied"
    assert _as(template, statements, action, BREAK_GLASS) == "allowed"
    assert _as(template, statements, action, DEPLOYMENT_ROLE) == "allowed"
