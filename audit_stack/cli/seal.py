"""``audit seal``: run the sealer now, signing the records written since the last digest."""

from __future__ import annotations

import argparse
import json
from typing import Any

from botocore.config import Config

from audit_stack import discovery
from audit_stack.cli import render
from audit_stack.cli.errors import OperatorError
from audit_stack.cli.target import Target
from audit_stack.lambda_code import contract

__all__ = ["run", "seal_now"]


def seal_now(target: Target) -> dict[str, Any]:
    """Invoke the sealer; its report (records sealed, digests written, chain head, rejected)."""
    lambda_ = target.client(
        "lambda", config=Config(read_timeout=180, retries={"total_max_attempts": 1})
    )
    response = lambda_.invoke(
        FunctionName=target.resource(discovery.SEALER),
        Payload=json.dumps({"trigger": "audit seal"}).encode(),
    )
    body = response["Payload"].read()
    result = json.loads(body) if body else {}
    if response.get("FunctionError"):
        error = result if isinstance(result, dict) else {}
        raise OperatorError(
            f"the sealer failed: {error.get('errorType', response['FunctionError'])}: "
            f"{error.get('errorMessage', body.decode(errors='replace'))}"
        )
    return result if isinstance(result, dict) else {"response": result}


def run(target: Target, arguments: argparse.Namespace) -> int:
    result = seal_now(target)
    if arguments.output == "json":
        render.print_json(result)
        return 0
    written = result.get(contract.SEAL_DIGESTS_WRITTEN, [])
    print(
        f"Sealed {result.get(contract.SEAL_RECORDS_SEALED, 0)} record(s) in "
        + (f"digest(s) {', '.join(map(str, written))}" if written else "no new digest")
        + f"; chain head is digest {result.get(contract.SEAL_CHAIN_HEAD, 0)}."
    )
    if result.get(contract.SEAL_NOTICES_ALREADY_SEALED):
        print(f"{result['notices_already_sealed']} repeated report(s) were already sealed.")
    rejected = result.get(contract.SEAL_REJECTED, [])
    if rejected:
        print(f"\n{len(rejected)} record(s) failed their check before sealing:")
        print(
            render.table(
                ("FINDING", "SUBJECT", "EVENT KEY"),
                [(r["finding"], r["subject"], r["event_key"]) for r in rejected],
            )
        )
    return 0
