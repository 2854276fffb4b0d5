"""``audit seal``: sign a digest now, so that the newest checkpoint is current.

Records reach the sealer through the audit table's stream, within the event source's batching
window (the pipeline's ``seal_interval``); this command does not wait for them. It writes a
digest at once (an empty one when the stream has delivered nothing new), which `audit verify`,
`audit checkpoint` and the anchor bucket then show as the chain's head.
"""

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
    """Invoke the sealer on demand; its report (digests written, chain head)."""
    lambda_ = target.client(
        "lambda", config=Config(read_timeout=180, retries={"total_max_attempts": 1})
    )
    response = lambda_.invoke(
        FunctionName=target.resource(discovery.SEALER),
        Payload=json.dumps({"trigger": contract.SEAL_ON_DEMAND}).encode(),
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
    if result.get(contract.SEAL_ALREADY_SEALED):
        print(f"{result[contract.SEAL_ALREADY_SEALED]} record(s) were already sealed.")
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
