"""``audit prove`` writes a self-contained inclusion proof of one record; ``audit verify-proof``
checks one offline, with the signing key's public key only (docs/INTEGRITY.md shows the same
check without this package)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from audit_stack import discovery
from audit_stack.cli import render
from audit_stack.cli.errors import EXIT_ERROR, EXIT_OK, OperatorError, UsageError
from audit_stack.cli.target import Target
from audit_stack.lambda_code import contract

__all__ = ["run_prove", "run_verify_proof"]


def _find_record(target: Target, wanted: str) -> dict[str, Any]:
    """The record whose event key is ``wanted`` or ends in ``#wanted`` (an event id)."""
    dynamodb = target.client("dynamodb")
    request: dict[str, Any] = {
        "TableName": target.resource(discovery.TABLE),
        "ConsistentRead": True,
        "FilterExpression": "#k = :k OR contains(#k, :id)",
        "ExpressionAttributeNames": {"#k": contract.SORT_KEY},
        "ExpressionAttributeValues": {":k": {"S": wanted}, ":id": {"S": f"#{wanted}"}},
    }
    found: list[dict[str, Any]] = []
    while True:
        page = dynamodb.scan(**request)
        found.extend(
            item
            for item in page["Items"]
            if item[contract.SORT_KEY]["S"] == wanted
            or item[contract.SORT_KEY]["S"].endswith(f"#{wanted}")
        )
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    if not found:
        raise OperatorError(f"no record has the event key or event id {wanted!r}")
    if len(found) > 1:
        raise UsageError(f"{len(found)} records match {wanted!r}: give the whole event key")
    return found[0]


def run_prove(target: Target, arguments: argparse.Namespace) -> int:
    from audit_stack import verify as checks  # cryptography only for the integrity commands

    record = _find_record(target, arguments.record)
    digests = checks.digest_items(
        target.client("dynamodb"), target.resource(discovery.DIGEST_TABLE), target.client("s3")
    )
    try:
        proof = checks.inclusion_proof(record, digests)
    except checks.ProofError as error:
        raise OperatorError(f"no proof for {arguments.record!r}: {error}") from None
    try:
        arguments.out.write_text(json.dumps(proof, indent=2, ensure_ascii=False) + "\n")
    except OSError as error:
        raise UsageError(f"--out {arguments.out}: {error}") from None
    summary = {
        "file": str(arguments.out),
        "event_key": proof["record"]["event_key"],
        "leaf_index": proof["leaf_index"],
        "tree_size": proof["tree_size"],
        "digest": proof["digest"],
    }
    if arguments.output == "json":
        render.print_json(summary)
    else:
        print(
            f"Wrote the proof that {summary['event_key']} is record {proof['leaf_index'] + 1} "
            f"of {proof['tree_size']} (sealed in digest {proof['digest']}) to {arguments.out}."
        )
    return EXIT_OK


def run_verify_proof(target: Target | None, arguments: argparse.Namespace) -> int:
    """Offline: no AWS call (``target`` is None)."""
    from audit_stack import verify as checks
    from audit_stack.cli.verify import public_key_for

    public_key = public_key_for(None, arguments.public_key)
    try:
        document = json.loads(arguments.proof.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"{arguments.proof}: {error}") from None
    try:
        signed = checks.check_inclusion_proof(document, public_key)
    except checks.ProofError as error:
        if arguments.output == "json":
            render.print_json({"ok": False, "finding": str(error)})
        else:
            print(f"FAILED: {error}")
        return EXIT_ERROR
    checkpoint = signed.checkpoint
    result = {
        "ok": True,
        "event_key": document["record"]["event_key"],
        "record_hash": document["record"]["record_hash"],
        "checkpoint": checkpoint.sequence,
        "tree_size": checkpoint.tree_size,
        "sealed_at": checkpoint.sealed_at,
        "table": checkpoint.table,
    }
    if arguments.output == "json":
        render.print_json(result)
    else:
        print(
            f"OK: {result['event_key']} is in the log of table {checkpoint.table}: checkpoint "
            f"{checkpoint.sequence} ({checkpoint.tree_size} record(s), sealed "
            f"{checkpoint.sealed_at}) signed by the given key."
        )
    return EXIT_OK
