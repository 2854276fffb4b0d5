"""Fixtures for the Lambda code: AWS mocked in-process by moto, a Lambda context, captured logs."""

from __future__ import annotations

import functools
import importlib
import io
import json
import logging
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws

# The Lambda asset's root is on sys.path in Lambda; tests import the package the same way.
LAMBDAS_DIR = Path(__file__).resolve().parents[3] / "lambdas"
if str(LAMBDAS_DIR) not in sys.path:
    sys.path.insert(0, str(LAMBDAS_DIR))

from audit_events import contract  # noqa: E402  (needs the asset root on sys.path)
from audit_stack.local.control.partiql_inserts import PartiqlInsertHooks  # noqa: E402
from audit_stack.local.control.sns_signing import SnsSigningHook  # noqa: E402

from .builders import (  # noqa: E402  (needs the asset root on sys.path)
    ACCOUNT_ID,
    REGION,
    TOPIC_ARN,
    other_signer,
    sns_test_signer,
)

SERVICE_NAME = "audit-pipeline-test"
METRICS_NAMESPACE = "AuditPipelineTest"
TABLE_NAME = "audit-events"
# Created by the CDK side; the tests name it only to query it.
EVENT_TYPE_INDEX = contract.EVENT_TYPE_INDEX
EVENT_TYPE_INDEX_SHARDS = 16


@pytest.fixture(autouse=True)
def lambda_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials and the environment Lambda gives the functions; no real AWS config."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)
    # DEBUG and "log the event" on, so the tests that no personal data is logged would see it.
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    # The recorder's topic: the one whose signed notifications it accepts.
    monkeypatch.setenv("TOPIC_ARN", TOPIC_ARN)


@pytest.fixture(autouse=True)
def trusted_test_certificates() -> Iterator[None]:
    """The tests' SNS certificates pinned in the recorder's cache, through the same seam the
    emulator's worker bootstrap uses (``trust_certificate``); nothing else is trusted."""
    sns_signature = importlib.import_module("audit_events.sns_signature")
    sns_signature.forget_certificates()
    for signer in (sns_test_signer(), other_signer()):
        sns_signature.trust_certificate(signer.cert_url, signer.certificate_pem)
    yield
    sns_signature.forget_certificates()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that opens a connection beyond this machine (moto runs in-process)."""
    original_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if host not in ("localhost", "127.0.0.1", "::1"):
                raise RuntimeError(f"unit tests must not connect to {host!r}")
        original_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@functools.cache
def _test_session() -> boto3.Session:
    # One session for the whole run: botocore then loads each service model once, and explicit
    # dummy credentials mean no credential or config lookup can reach a real account.
    return boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        region_name=REGION,
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every AWS call inside the test goes to moto's in-process backends, reset per test, with
    the emulator's PartiQL INSERT (the recorder's batched writes, which moto's parser refuses)."""
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", _test_session())
    inserts = PartiqlInsertHooks()
    inserts.install()
    try:
        with mock_aws(config={"core": {"reset_boto3_session": False}}):
            yield
    finally:
        inserts.uninstall()


@dataclass(frozen=True)
class MockTopic:
    """The audit topic and its queue, created in moto like the CDK stack creates them."""

    topic_arn: str
    queue_url: str
    queue_arn: str


@pytest.fixture
def topic(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[MockTopic]:
    """Topic -> queue, SNS envelope kept (no raw delivery), filtered on event_type; moto's SNS
    signs its envelopes with the tests' certificate, as the emulator's does with its own."""
    signing = SnsSigningHook()
    signing.install(sns_test_signer())
    sns = boto3.client("sns")
    sqs = boto3.client("sqs")
    # SHA-256 signatures, as the construct configures the topic (AWS's default is version 1).
    topic_arn = sns.create_topic(Name="audit-events", Attributes={"SignatureVersion": "2"})[
        "TopicArn"
    ]
    queue_url = sqs.create_queue(QueueName="audit-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={
            "RawMessageDelivery": "false",
            "FilterPolicy": json.dumps({"event_type": ["AccountDeleted"]}),
        },
    )
    monkeypatch.setenv("TOPIC_ARN", topic_arn)
    yield MockTopic(topic_arn, queue_url, queue_arn)
    signing.uninstall()


PSEUDONYM_SECRET = "k" * 64


@pytest.fixture
def pseudonym_secret(aws: None, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The pseudonym secret, in Secrets Manager as the stack creates it; its bytes."""
    arn = boto3.client("secretsmanager").create_secret(
        Name="audit-pseudonym-secret", SecretString=PSEUDONYM_SECRET
    )["ARN"]
    monkeypatch.setenv("PSEUDONYM_SECRET_ARN", arn)
    return PSEUDONYM_SECRET.encode()


@pytest.fixture
def subject_in_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    """The publisher as deployed with subject_in_clear=True."""
    monkeypatch.setenv("SUBJECT_IN_CLEAR", "true")


@pytest.fixture
def audit_table(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """The audit table's name; its keys and index are the data contract's."""
    partition_key, sort_key = contract.PARTITION_KEY, contract.SORT_KEY
    boto3.client("dynamodb").create_table(
        TableName=TABLE_NAME,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": partition_key, "AttributeType": "S"},
            {"AttributeName": sort_key, "AttributeType": "S"},
            {"AttributeName": contract.EVENT_TYPE_SHARD_ATTRIBUTE, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": partition_key, "KeyType": "HASH"},
            {"AttributeName": sort_key, "KeyType": "RANGE"},
        ],
        # As the construct makes it: the stream feeds the sealer.
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        GlobalSecondaryIndexes=[
            {
                "IndexName": EVENT_TYPE_INDEX,
                "KeySchema": [
                    {"AttributeName": contract.EVENT_TYPE_SHARD_ATTRIBUTE, "KeyType": "HASH"},
                    {"AttributeName": sort_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    monkeypatch.setenv("EVENT_TYPE_INDEX_SHARDS", str(EVENT_TYPE_INDEX_SHARDS))
    return TABLE_NAME


DIGEST_TABLE = "audit-digests"


class TableStream:
    """The audit table's DynamoDB stream in moto, read the way Lambda's event source reads it
    for the sealer: each call returns the records written since the previous call."""

    def __init__(self, table: str) -> None:
        self._table = table
        self._taken = 0

    def records(self) -> list[dict[str, Any]]:
        from moto.dynamodb.models import dynamodb_backends

        shard = dynamodb_backends[ACCOUNT_ID][REGION].get_table(self._table).stream_shard
        assert shard is not None, "the table has no stream"
        new = shard.items[self._taken :]
        self._taken = len(shard.items)
        return [self._shaped(found.to_json()) for found in new]

    def event(self) -> dict[str, Any]:
        """The next batch as the sealer's event (``{"Records": [...]}``), possibly empty."""
        return {"Records": self.records()}

    def _shaped(self, record: dict[str, Any]) -> dict[str, Any]:
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):  # Lambda's events carry epoch seconds
            change["ApproximateCreationDateTime"] = int(created.timestamp())
        return {
            **record,
            "eventVersion": "1.1",
            "dynamodb": change,
            "eventSourceARN": (
                f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{self._table}/stream/2026-01-01"
            ),
        }


@dataclass(frozen=True)
class Sealing:
    """The sealer's resources in moto, and the audit table's stream that feeds it."""

    table: str
    digest_table: str
    key_arn: str
    stream: TableStream

    def seal(self, sealer: ModuleType, context: LambdaContext) -> dict[str, Any]:
        """Deliver what the stream holds since the last delivery to the sealer's handler, as
        the event source does; the sealer's response."""
        response: dict[str, Any] = sealer.handler(self.stream.event(), context)
        return response


@pytest.fixture
def sealing(audit_table: str, monkeypatch: pytest.MonkeyPatch) -> Sealing:
    """The digest table and signing key, created in moto like the CDK stack creates them."""
    boto3.client("dynamodb").create_table(
        TableName=DIGEST_TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": contract.DIGEST_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": contract.DIGEST_SORT_KEY, "AttributeType": "N"},
        ],
        KeySchema=[
            {"AttributeName": contract.DIGEST_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": contract.DIGEST_SORT_KEY, "KeyType": "RANGE"},
        ],
    )
    key_arn = boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")[
        "KeyMetadata"
    ]["Arn"]
    monkeypatch.setenv("DIGEST_TABLE_NAME", DIGEST_TABLE)
    monkeypatch.setenv("SIGNING_KEY_ARN", key_arn)
    monkeypatch.setenv("HEARTBEAT_SECONDS", "3600")
    return Sealing(audit_table, DIGEST_TABLE, key_arn, TableStream(audit_table))


_IMPORTED_IN_THIS_ENVIRONMENT: set[str] = set()


def _handler_module(name: str) -> Iterator[ModuleType]:
    # Imported after lambda_environment: Powertools reads its settings at import time, as in
    # Lambda. Another suite of the session may have imported the module first, without this
    # environment, so the first use here reloads it. The cached AWS client is dropped around
    # each test so it is made inside the mock.
    module = importlib.import_module(name)
    if name not in _IMPORTED_IN_THIS_ENVIRONMENT:
        module = importlib.reload(module)
        _IMPORTED_IN_THIS_ENVIRONMENT.add(name)
    _forget_aws_clients(module)
    yield module
    _forget_aws_clients(module)


def _forget_aws_clients(module: ModuleType) -> None:
    importlib.import_module("audit_events.clients").forget_cached()


@pytest.fixture
def publisher() -> Iterator[ModuleType]:
    """The deleteAccount handler module."""
    yield from _handler_module("audit_events.delete_account")


@pytest.fixture
def recorder() -> Iterator[ModuleType]:
    """The recordDeletedAccountInfo handler module."""
    yield from _handler_module("audit_events.record_audit_event")


@pytest.fixture
def sealer() -> Iterator[ModuleType]:
    """The sealer handler module."""
    yield from _handler_module("audit_events.seal_records")


@dataclass
class FakeLambdaContext:
    """The Python runtime's context object: the attributes the handlers and Powertools read."""

    function_name: str = "AuditPipelineStack-RecordAuditEventFunction"
    function_version: str = "$LATEST"
    invoked_function_arn: str = (
        f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:AuditPipelineStack-RecordAuditEventFunction"
    )
    # The runtime passes the memory size as a string (from AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
    memory_limit_in_mb: str = "256"
    aws_request_id: str = "6f3c2a1e-9b8d-4c7e-a5f4-3e2d1c0b9a87"
    log_group_name: str = "/aws/lambda/AuditPipelineStack-RecordAuditEventFunction"
    log_stream_name: str = "2025/03/14/[$LATEST]0123456789abcdef0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 29_500


@pytest.fixture
def lambda_context() -> LambdaContext:
    """A Lambda context as the Python runtime passes it."""
    return cast(LambdaContext, FakeLambdaContext())


@dataclass
class CapturedLogs:
    """What the functions' Powertools loggers wrote, one JSON object per line."""

    stream: io.StringIO

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def captured_logs(publisher: ModuleType, recorder: ModuleType) -> Iterator[CapturedLogs]:
    """The handlers' log output (their stream handler is bound to stdout at import time)."""
    stream = io.StringIO()
    handlers = {module.logger.registered_handler for module in (publisher, recorder)}
    assert all(isinstance(handler, logging.StreamHandler) for handler in handlers)
    previous = {
        handler: cast(logging.StreamHandler[Any], handler).setStream(stream) for handler in handlers
    }
    yield CapturedLogs(stream)
    for handler, original in previous.items():
        cast(logging.StreamHandler[Any], handler).setStream(original)


def emitted_metrics(stdout: str) -> dict[str, float]:
    """Sum of each metric in the CloudWatch EMF lines Powertools printed to stdout."""
    totals: dict[str, float] = {}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        if "_aws" not in document:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == METRICS_NAMESPACE
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                values = value if isinstance(value, list) else [value]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(values)
    return totals
