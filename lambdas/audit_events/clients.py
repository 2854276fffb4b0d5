"""AWS clients whose timeouts and retries fit in what is left of an invocation, and the secret.

botocore's retry budget (3 attempts x (connect + read timeout) + back-off) must end before the
function's own timeout does: the caller then gets an error it can act on (the publisher's
caller, or SQS through a batch item failure) instead of a killed invocation.

Importing this module also pins the AWS SDK's loggers (:data:`SDK_LOGGERS`): every function
makes its AWS calls through here, so none of them can log the pseudonym secret.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from functools import cache
from typing import Any, NamedTuple

import boto3
from botocore.config import Config

# Per attempt: TCP+TLS connect, then the answer. DynamoDB and SNS answer in milliseconds.
CONNECT_TIMEOUT_SECONDS = 1
READ_TIMEOUT_SECONDS = 2
MAX_ATTEMPTS = 3
# Kept back from the remaining time for logging, the response and the runtime's own work.
RESERVE_SECONDS = 0.3
# Below this, not even one attempt is worth starting.
MIN_ATTEMPT_SECONDS = 0.2
# How long a fetched secret is reused: a rotated secret is picked up within this time.
SECRET_CACHE_SECONDS = 300.0

SDK_LOGGERS = ("boto3", "botocore", "s3transfer", "urllib3")
"""The AWS SDK's and its HTTP stack's loggers. At DEBUG, botocore logs every request and response
body, ``GetSecretValue``'s (the pseudonym key) included, and the Lambda runtime sets the root
logger to the function's application log level: so these are pinned, whatever that level or
POWERTOOLS_LOG_LEVEL says."""
SDK_LOG_LEVEL = logging.WARNING
"""The most the SDK may log: warnings and errors, which carry no bodies."""


def pin_sdk_loggers() -> None:
    """Hold the SDK's loggers at :data:`SDK_LOG_LEVEL` (their children inherit it)."""
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(SDK_LOG_LEVEL)


pin_sdk_loggers()


class RetryBudget(NamedTuple):
    """botocore settings for one call that end within a time budget."""

    connect_timeout: float
    read_timeout: float
    max_attempts: int

    def worst_case_seconds(self) -> float:
        """Every attempt timing out, with the standard retry mode's longest back-offs."""
        attempts = self.max_attempts * (self.connect_timeout + self.read_timeout)
        # Standard mode sleeps a random fraction of 2**(i-1) s before retry i; 2**i bounds it.
        back_off = sum(2**index for index in range(1, self.max_attempts))
        return float(attempts + back_off)


class OutOfTimeError(RuntimeError):
    """Too little of the invocation is left for even one attempt."""


def retry_budget(remaining_seconds: float) -> RetryBudget:
    """The most attempts (up to 3) of the usual timeouts, shrunk if needed, within the time."""
    budget = remaining_seconds - RESERVE_SECONDS
    for attempts in range(MAX_ATTEMPTS, 1, -1):
        candidate = RetryBudget(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, attempts)
        if candidate.worst_case_seconds() <= budget:
            return candidate
    # One attempt: its timeouts shrink to fit, in tenths of a second (so that a handful of
    # clients serve every remaining time).
    tenths = math.floor(budget * 10)
    if tenths < MIN_ATTEMPT_SECONDS * 10:
        raise OutOfTimeError(f"{remaining_seconds:.2f} s left: too little for one attempt")
    connect = min(CONNECT_TIMEOUT_SECONDS * 10, max(1, tenths // 3))
    read = min(READ_TIMEOUT_SECONDS * 10, tenths - connect)
    return RetryBudget(connect / 10, read / 10, 1)


_clients_lock = threading.Lock()


def client(service: str, remaining_seconds: float) -> Any:
    """A client of ``service`` whose retries end within ``remaining_seconds``.

    Thread-safe: the recorder's writer threads ask for clients at once, and an unguarded cache
    let each of them build its own (a new environment's first batch built 8 DynamoDB clients).
    """
    budget = retry_budget(remaining_seconds)
    with _clients_lock:
        return _client(service, budget)


@cache
def _client(service: str, budget: RetryBudget) -> Any:
    # A handful of budgets per execution environment, each client created once, on first use
    # (importing the module stays cheap; tests create them inside their AWS mock).
    return boto3.client(
        service,
        config=Config(
            connect_timeout=budget.connect_timeout,
            read_timeout=budget.read_timeout,
            retries={"mode": "standard", "total_max_attempts": budget.max_attempts},
            # Every request is built by this code, and the service validates it anyway:
            # botocore's own check of each request's shape is CPU spent per call for nothing.
            parameter_validation=False,
        ),
    )


_secrets: dict[str, tuple[float, bytes]] = {}


def pseudonym_secret(secret_arn: str, remaining_seconds: float) -> bytes:
    """A secret's bytes (its current version), fetched at most every 5 minutes: the pseudonym
    key, or the writer key (``secret_bytes``)."""
    cached = _secrets.get(secret_arn)
    now = time.monotonic()
    if cached is not None and now - cached[0] < SECRET_CACHE_SECONDS:
        return cached[1]
    value = client("secretsmanager", remaining_seconds).get_secret_value(SecretId=secret_arn)
    secret = str(value["SecretString"]).encode("utf-8")
    _secrets[secret_arn] = (now, secret)
    return secret


secret_bytes = pseudonym_secret
"""Any key the functions read from Secrets Manager, cached the same way."""


def forget_cached() -> None:
    """Drop every cached client and secret, as a new execution environment starts without them
    (tests create clients inside each test's AWS mock)."""
    with _clients_lock:
        _client.cache_clear()
    _secrets.clear()
