"""``audit delete-account EMAIL``: invoke the publisher as the original solution did."""

from __future__ import annotations

import argparse
import json
from typing import Any, Final

from botocore.config import Config

from audit_stack import discovery
from audit_stack.cli import render
from audit_stack.cli.errors import EXIT_USAGE, OperatorError
from audit_stack.cli.target import Target

__all__ = ["publish_deletion", "run"]

# The publisher's error type for a payload that breaks a rule (lambdas/audit_events/event.py).
_INVALID_PAYLOAD_ERROR: Final = "InvalidPayloadError"


def publish_deletion(target: Target, email: str, idempotency_key: str | None = None) -> Any:
    """Invoke the publisher with ``{"email": ...}``; the event it published (its response)."""
    if discovery.PUBLISHER not in target.resources:
        # Only a pipeline whose catalogue has AccountDeleted has the deleteAccount function.
        raise OperatorError(
            f"pipeline {target.pipeline!r} of stack {target.stack!r} has no deleteAccount "
            "function (AccountDeleted is not in its event_types): publish its own event types "
            f"with `{target.again('publish')} TYPE --subject ...`",
            EXIT_USAGE,
        )
    # Never retried: a retried invocation whose first attempt got through publishes twice.
    lambda_ = target.client(
        "lambda", config=Config(read_timeout=120, retries={"total_max_attempts": 1})
    )
    payload = {"email": email}
    if idempotency_key is not None:
        payload["idempotency_key"] = idempotency_key
    response = lambda_.invoke(
        FunctionName=target.resource(discovery.PUBLISHER),
        Payload=json.dumps(payload).encode(),
    )
    body = response["Payload"].read()
    result = json.loads(body) if body else None
    if response.get("FunctionError"):
        error = result if isinstance(result, dict) else {}
        error_type = str(error.get("errorType", response["FunctionError"]))
        message = str(error.get("errorMessage", body.decode(errors="replace")))
        if error_type == _INVALID_PAYLOAD_ERROR:
            raise OperatorError(f"the publisher rejected the request: {message}", EXIT_USAGE)
        raise OperatorError(f"the publisher failed: {error_type}: {message}")
    return result


def run(target: Target, arguments: argparse.Namespace) -> int:
    result = publish_deletion(target, arguments.email, arguments.idempotency_key)
    if arguments.output == "json":
        render.print_json(result)
        return 0
    render.print_pairs(result if isinstance(result, dict) else {"response": result})
    # The address is not repeated: this output may end up in a ticket or a shared terminal.
    print(f"\nRecorded within seconds; see it with: {target.again('trail')} EMAIL")
    return 0
