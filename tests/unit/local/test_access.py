"""What the emulator asks IAM for each request (actions and resources from the Service
Authorization Reference), and who a request comes from."""

from __future__ import annotations

import json

import pytest

from audit_stack.iam.matching import glob_matches
from audit_stack.local.access.identities import (
    INTERNAL_ACCESS_KEY_ID,
    OUTSIDE_ACCESS_KEY_ID,
    Identities,
)
from audit_stack.local.access.requests import Names, Target, targets
from audit_stack.local.http.operations import Operation, s3_operation

ACCOUNT = "123456789012"
REGION = "eu-west-1"
NAMES = Names(
    ACCOUNT,
    REGION,
    key_arn=lambda key: f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key}",
    secret_arn=lambda secret: f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}-AbCdEf",
)
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Audit"


def json_request(service: str, name: str, body: dict[str, object]) -> list[Target]:
    return targets(Operation(service, name, "json", REGION), json.dumps(body).encode(), NAMES)


def test_a_batch_api_is_authorized_as_its_single_action_on_the_queue() -> None:
    """SQS: SendMessageBatch needs sqs:SendMessage
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsqs.html)."""
    url = f"http://127.0.0.1:4599/{ACCOUNT}/audit-queue"
    assert json_request("sqs", "SendMessageBatch", {"QueueUrl": url}) == [
        Target("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:audit-queue")
    ]
    query = targets(
        Operation("sqs", "DeleteMessageBatch", "query", REGION),
        f"Action=DeleteMessageBatch&QueueUrl={url}".encode(),
        NAMES,
    )
    assert query == [Target("sqs:DeleteMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:audit-queue")]


def test_a_transaction_is_authorized_per_item_action_and_table() -> None:
    """DynamoDB: TransactWriteItems needs the action of each item (PutItem, UpdateItem, ...)
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html)."""
    found = json_request(
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "Audit"}},
                {"Update": {"TableName": "Other"}},
                {"ConditionCheck": {"TableName": "Audit"}},
            ]
        },
    )
    # (Each item's condition keys, dynamodb:Attributes..., are test_redaction_conditions.py's.)
    assert [Target(target.action, target.resource) for target in found] == [
        Target("dynamodb:PutItem", TABLE),
        Target("dynamodb:UpdateItem", TABLE.replace("Audit", "Other")),
        Target("dynamodb:ConditionCheckItem", TABLE),
    ]


def test_batch_write_names_every_table_and_partiql_its_verb() -> None:
    """DynamoDB: BatchWriteItem on each table of RequestItems; ExecuteStatement as
    PartiQLInsert/Update/Delete/Select on the statement's table
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-iam.html)."""
    batch = json_request("dynamodb", "BatchWriteItem", {"RequestItems": {"Audit": [], "B": []}})
    assert batch == [
        Target("dynamodb:BatchWriteItem", TABLE),
        Target("dynamodb:BatchWriteItem", TABLE.replace("Audit", "B")),
    ]
    for statement, action in (
        ('INSERT INTO "Audit" VALUE {}', "dynamodb:PartiQLInsert"),
        ("UPDATE Audit SET a = 1 WHERE k = 'x'", "dynamodb:PartiQLUpdate"),
        ('DELETE FROM "Audit" WHERE k = 1', "dynamodb:PartiQLDelete"),
        ('SELECT * FROM "Audit"', "dynamodb:PartiQLSelect"),
    ):
        assert json_request("dynamodb", "ExecuteStatement", {"Statement": statement}) == [
            Target(action, TABLE)
        ]


def test_a_query_of_an_index_names_the_index() -> None:
    """DynamoDB: a Query of an index is authorized on ``table/NAME/index/INDEX``."""
    assert json_request("dynamodb", "Query", {"TableName": "Audit", "IndexName": "by-type"}) == [
        Target("dynamodb:Query", f"{TABLE}/index/by-type")
    ]


def test_kms_secrets_lambda_and_apis_without_a_resource() -> None:
    """KMS by key ARN, Secrets Manager by secret ARN, Lambda Invoke as lambda:InvokeFunction on
    the function ARN; an API that names no resource is checked on ``*``."""
    assert json_request("kms", "Sign", {"KeyId": "k-1"}) == [
        Target("kms:Sign", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-1")
    ]
    assert json_request("secretsmanager", "GetSecretValue", {"SecretId": "pseudonym"}) == [
        Target(
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:pseudonym-AbCdEf",
        )
    ]
    invoke = Operation("lambda", "Invoke", "rest", REGION, "recorder")
    assert targets(invoke, b"{}", NAMES) == [
        Target("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:recorder")
    ]
    assert json_request("dynamodb", "ListTables", {}) == [Target("dynamodb:ListTables", "*")]


def test_a_cloudformation_request_naming_a_stack_is_checked_on_that_stacks_arn() -> None:
    """CloudFormation: DescribeStacks, GetTemplate and ListStackResources on the stack's ARN
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudformation.html),
    which the operator grants' ``stack/<name>/*`` matches; listing every stack is on ``*``."""
    granted = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Shop/*"
    for operation in ("DescribeStacks", "GetTemplate", "ListStackResources"):
        (target,) = targets(
            Operation("cloudformation", operation, "query", REGION),
            f"Action={operation}&StackName=Shop".encode(),
            NAMES,
        )
        assert target.action == f"cloudformation:{operation}"
        assert glob_matches(granted, target.resource)
        assert not glob_matches(
            f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Sho/*", target.resource
        )
    stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Shop/0f1e2d3c"
    assert targets(
        Operation("cloudformation", "GetTemplate", "query", REGION),
        f"Action=GetTemplate&StackName={stack_id}".encode(),
        NAMES,
    ) == [Target("cloudformation:GetTemplate", stack_id)]
    assert targets(
        Operation("cloudformation", "DescribeStacks", "query", REGION),
        b"Action=DescribeStacks",
        NAMES,
    ) == [Target("cloudformation:DescribeStacks", "*")]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (OUTSIDE_ACCESS_KEY_ID, "arn:aws:iam::123456789012:role/Administrator"),
        ("AKIAUNKNOWN", "arn:aws:iam::123456789012:role/Administrator"),
    ],
)
def test_any_key_the_emulator_did_not_hand_out_is_the_outside_principal(
    key: str, expected: str
) -> None:
    identities = Identities("arn:aws:iam::123456789012:role/Administrator")
    authorization = f"AWS4-HMAC-SHA256 Credential={key}/20261205/eu-west-1/sqs/aws4_request, ..."
    assert identities.of_authorization(authorization).principal_arn == expected


def test_functions_and_pollers_get_keys_that_map_back_to_their_role() -> None:
    """A function's key carries lambda:SourceFunctionArn, its poller's does not; the emulator's
    own key is internal (not checked)."""
    identities = Identities("arn:aws:iam::123456789012:role/Administrator")
    role = "arn:aws:iam::123456789012:role/Recorder"
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:recorder"
    function_key = identities.add_function(function, role)
    poller_key = identities.add_poller("mapping-uuid", role)
    assert function_key != poller_key
    assert function_key.startswith("ASIA")
    assert identities.of_key(function_key).source_function_arn == function
    assert identities.of_key(poller_key).principal_arn == role
    assert identities.of_key(poller_key).source_function_arn is None
    assert identities.of_key(INTERNAL_ACCESS_KEY_ID).internal
    assert not identities.of_key(function_key).internal


@pytest.mark.parametrize(
    ("method", "path", "query", "action", "resource"),
    [
        (
            "PUT",
            "/anchors/checkpoints/t/1.json",
            "",
            "s3:PutObject",
            "arn:aws:s3:::anchors/checkpoints/t/1.json",
        ),
        ("PUT", "/anchors/k", "retention", "s3:PutObjectRetention", "arn:aws:s3:::anchors/k"),
        ("GET", "/anchors/k", "versionId=3", "s3:GetObjectVersion", "arn:aws:s3:::anchors/k"),
        ("HEAD", "/anchors/k", "", "s3:GetObject", "arn:aws:s3:::anchors/k"),
        ("DELETE", "/anchors/k", "versionId=3", "s3:DeleteObjectVersion", "arn:aws:s3:::anchors/k"),
        ("GET", "/anchors", "versions&prefix=c", "s3:ListBucketVersions", "arn:aws:s3:::anchors"),
        ("GET", "/anchors", "list-type=2", "s3:ListBucket", "arn:aws:s3:::anchors"),
        (
            "GET",
            "/anchors",
            "object-lock",
            "s3:GetBucketObjectLockConfiguration",
            "arn:aws:s3:::anchors",
        ),
        ("GET", "/", "", "s3:ListAllMyBuckets", "*"),
    ],
)
def test_an_s3_request_is_authorized_as_its_iam_action_on_the_bucket_or_object(
    method: str, path: str, query: str, action: str, resource: str
) -> None:
    """Path-style S3 requests, named as the Service Authorization Reference names their actions
    (docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html)."""
    operation = Operation("s3", s3_operation(method, path, query), "rest", "us-east-1")

    assert targets(operation, b"", NAMES, path, query) == [Target(action, resource)]
