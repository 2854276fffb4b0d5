"""``audit checkpoint``: export the newest signed checkpoint, for a witness to keep.

A checkpoint saved today lets anyone prove later, with ``audit verify --from FILE``, that the log
still extends it: a rewritten history fails that proof even when re-signed with the real key.
"""

from __future__ import annotations

import argparse

from audit_stack import discovery
from audit_stack.cli import render
from audit_stack.cli.errors import EXIT_OK, OperatorError, UsageError
from audit_stack.cli.target import Target

__all__ = ["run"]


def run(target: Target, arguments: argparse.Namespace) -> int:
    from audit_stack import verify as checks  # cryptography only for the integrity commands

    digests = checks.digest_items(
        target.client("dynamodb"), target.resource(discovery.DIGEST_TABLE), target.client("s3")
    )
    signed = checks.newest_signed_checkpoint(digests)
    if signed is None:
        raise OperatorError(
            "the log has no signed checkpoint yet (no digest, or only version 1 digests): "
            f"seal with {target.again('seal')}"
        )
    try:
        arguments.out.write_bytes(signed.document())
    except OSError as error:
        raise UsageError(f"--out {arguments.out}: {error}") from None
    checkpoint = signed.checkpoint
    summary = {
        "file": str(arguments.out),
        "sequence": checkpoint.sequence,
        "sealed_at": checkpoint.sealed_at,
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
    }
    if arguments.output == "json":
        render.print_json(summary)
    else:
        print(
            f"Wrote checkpoint {checkpoint.sequence} ({checkpoint.tree_size} record(s), sealed "
            f"{checkpoint.sealed_at}, root {checkpoint.root_hash}) to {arguments.out}.\n"
            f"Later: {target.again('verify', '--from', str(arguments.out))}"
        )
    return EXIT_OK
