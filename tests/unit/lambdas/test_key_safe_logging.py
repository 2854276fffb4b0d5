"""The pseudonym secret and the address never reach the logs, even with every log level at DEBUG.

The Lambda runtime sets the root logger to the function's application log level
(``AWS_LAMBDA_LOG_LEVEL``, JSON log format), and botocore logs every response body at DEBUG,
``GetSecretValue``'s included: the functions pin the AWS SDK's loggers so that cannot happen.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events import clients

from .builders import (
    account_deleted,
    sns_notification,
    sqs_event,
    sqs_event_from_received,
    sqs_record,
)
from .conftest import LAMBDAS_DIR, PSEUDONYM_SECRET, CapturedLogs, MockTopic, Sealing

ADDRESS = "Key.Safe.Logging@Mail.Example"
CLEAR_ADDRESS = "clear.producer@mail.example"


@pytest.fixture
def runtime_root_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The root logger as the managed runtime sets it up for application log level DEBUG
    (``audit_stack/local/runtime/_lambda_runtime.py`` does the same), writing to a buffer."""
    monkeypatch.setenv("AWS_LAMBDA_LOG_FORMAT", "JSON")
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root.handlers = [handler]
    root.setLevel(logging.DEBUG)
    yield stream
    root.handlers, level = saved
    root.setLevel(level)


def _publish_and_record(
    publisher: ModuleType, recorder: ModuleType, topic: MockTopic, context: LambdaContext
) -> None:
    """One call of the publisher, its message through the recorder, and a clear event that
    makes the recorder fetch the secret to pseudonymise it; each function starts cold."""
    clients.forget_cached()
    assert "event_id" in publisher.handler({"email": ADDRESS}, context)
    received = boto3.client("sqs").receive_message(
        QueueUrl=topic.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    clients.forget_cached()
    assert recorder.handler(sqs_event_from_received(received, topic.queue_arn), context) == {
        "batchItemFailures": []
    }
    # Delivered from the recorder's own topic (the fixture's), as SNS signs it.
    clear = sqs_event(
        sqs_record(
            sns_notification(account_deleted(CLEAR_ADDRESS).to_json(), topic_arn=topic.topic_arn)
        )
    )
    assert recorder.handler(clear, context) == {"batchItemFailures": []}


def test_at_debug_everywhere_neither_the_secret_nor_an_address_is_logged(
    runtime_root_logger: io.StringIO,
    captured_logs: CapturedLogs,
    topic: MockTopic,
    sealing: Sealing,
    pseudonym_secret: bytes,
    publisher: ModuleType,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _publish_and_record(publisher, recorder, topic, lambda_context)

    printed = capsys.readouterr()
    everything = runtime_root_logger.getvalue() + captured_logs.text + printed.out + printed.err
    # Both the functions' Powertools loggers and the runtime's root logger were at DEBUG.
    assert publisher.logger.log_level == recorder.logger.log_level == logging.DEBUG
    assert logging.getLogger().level == logging.DEBUG
    assert "GetSecretValue" not in runtime_root_logger.getvalue()
    for secret_or_address in (PSEUDONYM_SECRET, ADDRESS, ADDRESS.lower(), CLEAR_ADDRESS):
        assert secret_or_address not in everything
    for name in clients.SDK_LOGGERS:
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING


def test_the_scan_would_see_the_secret_if_the_sdk_loggers_were_not_pinned(
    runtime_root_logger: io.StringIO,
    topic: MockTopic,
    sealing: Sealing,
    pseudonym_secret: bytes,
    publisher: ModuleType,
    recorder: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    # Proof that the test above can fail: unpinned, botocore logs GetSecretValue's body.
    for name in clients.SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    try:
        _publish_and_record(publisher, recorder, topic, lambda_context)
    finally:
        clients.pin_sdk_loggers()
    assert PSEUDONYM_SECRET in runtime_root_logger.getvalue()


def _handler_modules() -> list[str]:
    """Every module of the Lambda asset that defines a function handler."""
    package = LAMBDAS_DIR / "audit_events"
    return sorted(
        f"audit_events.{path.stem}"
        for path in package.glob("*.py")
        if "\ndef handler(" in path.read_text(encoding="utf-8")
    )


@pytest.mark.parametrize("module", _handler_modules())
def test_every_function_pins_the_sdk_loggers_as_its_handler_module_loads(module: str) -> None:
    # A fresh interpreter, as a new execution environment: root at DEBUG first, as the runtime
    # sets it before it imports the handler.
    script = (
        "import logging, sys\n"
        f"sys.path.insert(0, {str(LAMBDAS_DIR)!r})\n"
        "logging.getLogger().setLevel(logging.DEBUG)\n"
        f"import {module}\n"
        f"print([logging.getLogger(n).getEffectiveLevel() for n in {clients.SDK_LOGGERS!r}])\n"
    )
    environment = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [sys.executable, "-I", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        cwd=Path(LAMBDAS_DIR),
    )
    assert result.stdout.strip() == str([logging.WARNING] * len(clients.SDK_LOGGERS))
