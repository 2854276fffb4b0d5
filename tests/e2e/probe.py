"""A probe stack for the emulator's own tests: one Python function whose handler reports what it
sees (environment, context, worker) and can sleep, fail or answer a large payload on request."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from audit_stack.local import LocalAuditPipeline

PROBE_HANDLER = """
import importlib.util
import os
import sys
import time

INITS = 0
INITS += 1  # module-level code: runs once per execution environment


def handler(event, context):
    records = event.get("Records") or []
    if records and "dynamodb" in records[0]:
        return _stream(records)
    body = records[0]["body"] if records else ""
    if body.startswith("respond:"):
        return "x" * int(body.split(":", 1)[1])
    if event.get("respond_bytes"):
        return "x" * event["respond_bytes"]
    sleep = event.get("sleep") or (float(body) if body else 0)
    if sleep:
        time.sleep(sleep)
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {
        "pid": os.getpid(),
        "inits": INITS,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "sys_path": sys.path,
        "emulator_importable": importlib.util.find_spec("audit_stack") is not None,
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
    }


def _stream(records):
    # A DynamoDB stream batch: an item whose "fail" attribute is "raise" fails the invocation;
    # "report" is returned as a batch item failure (ReportBatchItemFailures).
    modes = [r["dynamodb"].get("NewImage", {}).get("fail", {}).get("S") for r in records]
    if "raise" in modes:
        raise ValueError("asked to fail")
    failed = [r["dynamodb"]["SequenceNumber"] for r, m in zip(records, modes) if m == "report"]
    return {"batchItemFailures": [{"itemIdentifier": number} for number in failed]}
"""

# What the Lambda service itself puts into a function's environment (and the emulator's
# endpoint and isolation settings), on top of the template's variables.
LAMBDA_SET_VARIABLES = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_LOG_FORMAT",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "TZ",
    "LANG",
    "PATH",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",
}


def write_assembly(directory: Path, resources: dict[str, Any], outputs: dict[str, Any]) -> Path:
    """A minimal cloud assembly: one stack, one directory asset holding the probe handler."""
    asset = directory / "asset.probe"
    asset.mkdir(parents=True)
    (asset / "probe.py").write_text(PROBE_HANDLER)
    (directory / "ProbeStack.template.json").write_text(
        json.dumps({"Resources": resources, "Outputs": outputs})
    )
    (directory / "ProbeStack.assets.json").write_text(
        json.dumps(
            {
                "files": {
                    "probe": {
                        "source": {"path": "asset.probe", "packaging": "zip"},
                        "destinations": {"d": {"bucketName": "assets", "objectKey": "probe.zip"}},
                    }
                }
            }
        )
    )
    (directory / "manifest.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    "ProbeStack.assets": {
                        "type": "cdk:asset-manifest",
                        "properties": {"file": "ProbeStack.assets.json"},
                    },
                    "ProbeStack": {
                        "type": "aws:cloudformation:stack",
                        "properties": {"templateFile": "ProbeStack.template.json"},
                        "dependencies": ["ProbeStack.assets"],
                    },
                }
            }
        )
    )
    return directory


def probe_function(**properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {"S3Bucket": "assets", "S3Key": "probe.zip"},
            "Handler": "probe.handler",
            "Runtime": "python3.14",
            "Timeout": 1,
            "MemorySize": 512,
            "Environment": {
                "Variables": {"GREETING": "hello", "REGION_SEEN": {"Ref": "AWS::Region"}}
            },
            **properties,
        },
    }


def sqs_fed_probe(
    directory: Path,
    *,
    function: dict[str, Any] | None = None,
    queue: dict[str, Any] | None = None,
    max_receive_count: int | None = None,
    **mapping: Any,
) -> Path:
    """The probe function fed by a queue through an event source mapping with ``mapping``;
    with ``max_receive_count``, the queue's redrive policy sends failed messages to a DLQ."""
    queue_properties: dict[str, Any] = {"VisibilityTimeout": 30, **(queue or {})}
    resources: dict[str, Any] = {"Probe": probe_function(**(function or {}))}
    outputs: dict[str, Any] = {"QueueUrl": {"Value": {"Ref": "Queue"}}}
    if max_receive_count is not None:
        resources["DeadLetters"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
        queue_properties["RedrivePolicy"] = {
            "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetters", "Arn"]},
            "maxReceiveCount": max_receive_count,
        }
        outputs["DeadLetterQueueUrl"] = {"Value": {"Ref": "DeadLetters"}}
    resources["Queue"] = {"Type": "AWS::SQS::Queue", "Properties": queue_properties}
    resources["Mapping"] = {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {
            "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]},
            "FunctionName": {"Ref": "Probe"},
            **mapping,
        },
    }
    return write_assembly(directory, resources, outputs)


def in_flight(pipeline: LocalAuditPipeline, output: str = "QueueUrl") -> int:
    """Messages of a queue received and neither deleted nor visible again."""
    attributes = pipeline.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.outputs[output],
        AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def messages_in(pipeline: LocalAuditPipeline, output: str) -> int:
    """Every message of a queue (visible, in flight and delayed), named by a stack output."""
    attributes = pipeline.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.outputs[output], AttributeNames=["All"]
    )["Attributes"]
    return sum(
        int(attributes[name])
        for name in (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
    )


def send(pipeline: LocalAuditPipeline, bodies: list[str]) -> None:
    sqs = pipeline.client("sqs")
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=pipeline.outputs["QueueUrl"],
            Entries=[
                {"Id": str(index), "MessageBody": body}
                for index, body in enumerate(bodies[start : start + 10])
            ],
        )


def child_processes() -> set[int]:
    """Live processes whose parent is this one (read from /proc)."""
    children = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
            if fields.get("PPid", "").strip() == str(os.getpid()):
                children.add(int(status.parent.name))
    return children


def stream_fed_probe(
    directory: Path,
    *,
    table: dict[str, Any] | None = None,
    function: dict[str, Any] | None = None,
    more: dict[str, Any] | None = None,
    **mapping: Any,
) -> Path:
    """The probe function (with ``function``'s properties) fed by a table's DynamoDB stream (new
    and old images) through an event source mapping with ``mapping`` (StartingPosition
    TRIM_HORIZON unless given); ``more``: other resources of the stack."""
    table_properties: dict[str, Any] = {
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
        **(table or {}),
    }
    resources: dict[str, Any] = {
        "Probe": probe_function(**{"Timeout": 10, **(function or {})}),
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": table_properties},
        **(more or {}),
        "Mapping": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "EventSourceArn": {"Fn::GetAtt": ["Table", "StreamArn"]},
                "FunctionName": {"Ref": "Probe"},
                "StartingPosition": "TRIM_HORIZON",
                **mapping,
            },
        },
    }
    outputs = {
        "TableName": {"Value": {"Ref": "Table"}},
        "StreamArn": {"Value": {"Fn::GetAtt": ["Table", "StreamArn"]}},
    }
    return write_assembly(directory, resources, outputs)
