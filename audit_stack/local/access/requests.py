"""What a request asks IAM for: the actions and resource ARNs of an operation, read from its
parameters (the Service Authorization Reference's action and resource for each API).

https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from audit_stack.local.http.operations import Operation

# Operations whose IAM action has another name (batch APIs authorize as their single form).
_ACTION_NAMES: Mapping[str, str] = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sns:PublishBatch": "sns:Publish",
    "lambda:Invoke": "lambda:InvokeFunction",
}
_TRANSACT_WRITES: Mapping[str, str] = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
_TABLE_NAME = r"\"?(?P<table>[A-Za-z0-9_.-]+)\"?"
# PartiQL statements by verb: the table follows INSERT INTO, UPDATE, DELETE FROM, or FROM.
_PARTIQL: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (action, re.compile(pattern + _TABLE_NAME, re.IGNORECASE | re.DOTALL))
    for action, pattern in (
        ("dynamodb:PartiQLInsert", r"^\s*insert\s+into\s+"),
        ("dynamodb:PartiQLUpdate", r"^\s*update\s+"),
        ("dynamodb:PartiQLDelete", r"^\s*delete\s+from\s+"),
        ("dynamodb:PartiQLSelect", r"^\s*(?:select|exists)\b.*?\bfrom\s+"),
    )
)


@dataclass(frozen=True)
class Target:
    """One action on one resource that the request needs."""

    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Condition keys the request itself sets (``dynamodb:Attributes``...), as (key, values)."""


def parameters(operation: Operation, body: bytes) -> dict[str, Any]:
    """The request's parameters: a JSON body, or a query body's first value of each name."""
    if operation.protocol == "json":
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            return {}
        return document if isinstance(document, dict) else {}
    if operation.protocol == "query":
        return {
            name: values[0]
            for name, values in parse_qs(body.decode("utf-8", errors="replace")).items()
        }
    return {}


@dataclass(frozen=True)
class Names:
    """How to turn the names requests carry into ARNs."""

    account_id: str
    region: str
    key_arn: Callable[[str], str]
    secret_arn: Callable[[str], str]

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"

    def queue(self, url_or_name: str) -> str:
        if url_or_name.startswith("arn:"):
            return url_or_name
        path = urlparse(url_or_name).path if "://" in url_or_name else url_or_name
        parts = [part for part in path.split("/") if part]
        if len(parts) >= 2 and parts[-2].isdigit():
            return f"arn:aws:sqs:{self.region}:{parts[-2]}:{parts[-1]}"
        return self.arn("sqs", parts[-1] if parts else url_or_name)

    def table(self, name: str, index: str | None = None) -> str:
        arn = name if name.startswith("arn:") else self.arn("dynamodb", f"table/{name}")
        return f"{arn}/index/{index}" if index else arn

    def stack(self, name_or_id: str) -> str:
        """A stack's ARN. A request may name the stack instead of giving its id, whose last part
        is a unique id: any id stands for it, so policies that name the stack as grants do
        (``stack/<name>/*``) match, as on AWS."""
        if name_or_id.startswith("arn:"):
            return name_or_id
        return self.arn("cloudformation", f"stack/{name_or_id}/by-name")

    def function(self, name: str) -> str:
        if name.startswith("arn:"):
            return ":".join(name.split(":")[:7])
        return self.arn("lambda", f"function:{name.split(':')[0]}")


def targets(
    operation: Operation, body: bytes, names: Names, path: str = "", query: str = ""
) -> list[Target]:
    """The (action, resource) pairs IAM checks for the request; resource ``*`` for APIs that
    name none."""
    action = _ACTION_NAMES.get(operation.action, operation.action)
    params = parameters(operation, body)
    service = operation.service
    if service == "sqs":
        queue = params.get("QueueUrl") or params.get("QueueName") or params.get("SourceArn")
        if not queue and path.strip("/"):
            queue = path
        return [Target(action, names.queue(str(queue)) if queue else "*")]
    if service == "sns":
        topic = params.get("TopicArn") or params.get("TargetArn") or params.get("ResourceArn")
        return [Target(action, str(topic) if topic else "*")]
    if service == "dynamodb":
        return _dynamodb(operation, action, params, names)
    if service == "kms":
        key = params.get("KeyId")
        return [Target(action, names.key_arn(str(key)) if key else "*")]
    if service == "secretsmanager":
        secret = params.get("SecretId")
        return [Target(action, names.secret_arn(str(secret)) if secret else "*")]
    if service == "lambda" and operation.function_name:
        return [Target(action, names.function(operation.function_name))]
    if service == "s3":
        return _s3(operation, path, query)
    if service == "cloudformation":
        stack = params.get("StackName")
        return [Target(action, names.stack(str(stack)) if stack else "*")]
    return [Target(action, "*")]


# S3 operations whose IAM action has another name (the Service Authorization Reference's
# "Actions defined by Amazon S3"); a versioned request asks for the version action.
_S3_ACTIONS: Mapping[str, str] = {
    "HeadObject": "GetObject",
    "HeadBucket": "ListBucket",
    "ListObjects": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "ListBuckets": "ListAllMyBuckets",
    "GetObjectLockConfiguration": "GetBucketObjectLockConfiguration",
    "PutObjectLockConfiguration": "PutBucketObjectLockConfiguration",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "DeleteObjects": "DeleteObject",
}
_S3_VERSIONED: Mapping[str, str] = {
    "GetObject": "GetObjectVersion",
    "DeleteObject": "DeleteObjectVersion",
    "GetObjectRetention": "GetObjectRetention",
    "PutObjectRetention": "PutObjectRetention",
}


def _s3(operation: Operation, path: str, query: str) -> list[Target]:
    bucket, _, key = path.lstrip("/").partition("/")
    name = _S3_ACTIONS.get(operation.name, operation.name)
    if "versionId" in parse_qs(query) and name in _S3_VERSIONED:
        name = _S3_VERSIONED[name]
    if not bucket:
        return [Target(f"s3:{name}", "*")]
    resource = f"arn:aws:s3:::{bucket}" + (f"/{unquote(key)}" if key else "")
    return [Target(f"s3:{name}", resource)]


def _dynamodb(
    operation: Operation, action: str, params: Mapping[str, Any], names: Names
) -> list[Target]:
    name = operation.name
    if name in {"BatchWriteItem", "BatchGetItem"}:
        return [Target(action, names.table(table)) for table in params.get("RequestItems", {})]
    if name == "TransactWriteItems":
        found = []
        for item in params.get("TransactItems", []):
            for kind, write in item.items():
                if kind in _TRANSACT_WRITES:
                    action = _TRANSACT_WRITES[kind]
                    found.append(
                        Target(
                            action,
                            names.table(write["TableName"]),
                            _item_write_context(action.split(":")[1], write),
                        )
                    )
        return found
    if name == "TransactGetItems":
        return [
            Target("dynamodb:GetItem", names.table(item["Get"]["TableName"]))
            for item in params.get("TransactItems", [])
            if "Get" in item
        ]
    if name in {"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"}:
        statements = (
            [params.get("Statement", "")]
            if name == "ExecuteStatement"
            else [item.get("Statement", "") for item in params.get("Statements", [])]
            + [item.get("Statement", "") for item in params.get("TransactStatements", [])]
        )
        found = []
        for statement in statements:
            for partiql_action, pattern in _PARTIQL:
                match = pattern.match(str(statement))
                if match is not None:
                    found.append(Target(partiql_action, names.table(match.group("table"))))
                    break
            else:
                # Not understood: DynamoDB will refuse it; IAM is asked about the whole service.
                found.append(Target("dynamodb:PartiQLSelect", "*"))
        return found
    table = params.get("TableName") or params.get("ResourceArn")
    if not table:
        return [Target(action, "*")]
    return [
        Target(
            action,
            names.table(str(table), params.get("IndexName")),
            _item_write_context(name, params),
        )
    ]


# Words of update and condition expressions that are no attribute names.
_EXPRESSION_WORDS = frozenset(
    {
        "set",
        "remove",
        "add",
        "delete",
        "and",
        "or",
        "not",
        "between",
        "in",
        "attribute_exists",
        "attribute_not_exists",
        "attribute_type",
        "begins_with",
        "contains",
        "size",
        "if_not_exists",
        "list_append",
    }
)
_EXPRESSION_NAME = re.compile(r"(?<![\w:#.\[])(#?[A-Za-z_][A-Za-z0-9_]*)")


def _item_write_context(
    name: str, params: Mapping[str, Any]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``dynamodb:Attributes`` and ``dynamodb:ReturnValues`` of a single-item write, the
    condition keys DynamoDB sets for fine-grained access control: the top-level attribute names
    the request names (its key, item, update and condition expressions)."""
    if name not in {"PutItem", "UpdateItem", "DeleteItem"}:
        return ()
    substitutes = params.get("ExpressionAttributeNames") or {}
    found: dict[str, None] = {}
    for source in ("Key", "Item", "AttributeUpdates", "Expected"):
        found.update(dict.fromkeys(str(key) for key in params.get(source) or {}))
    for source in ("UpdateExpression", "ConditionExpression"):
        for word in _EXPRESSION_NAME.findall(str(params.get(source) or "")):
            if word.startswith("#"):
                found[str(substitutes.get(word, word))] = None
            elif word.lower() not in _EXPRESSION_WORDS:
                found[word] = None
    context: list[tuple[str, tuple[str, ...]]] = [("dynamodb:Attributes", tuple(found))]
    if params.get("ReturnValues"):
        context.append(("dynamodb:ReturnValues", (str(params["ReturnValues"]),)))
    return tuple(context)
