"""Synthesize one peer: ``python -m bench.peers.app <peer> <outdir>``.

Peers: ``no-index`` (the project's AuditStack with ``event_type_index=False``) and
``solutions-constructs`` (``bench/peers/solutions.py``).
"""

from __future__ import annotations

import sys

NO_INDEX_STACK_NAME = "AuditPipelineNoIndexStack"
SOLUTIONS_STACK_NAME = "SolutionsConstructsAuditStack"
# The peer from the real packages (bench/peers/solutions_constructs.py, in the side environment).
SOLUTIONS_PACKAGES_STACK_NAME = "SolutionsConstructsPackagesStack"


def main(peer: str, outdir: str) -> None:
    """Write the peer's cloud assembly into ``outdir``."""
    # Imported here: the benchmark reads the stack names without starting jsii's kernel.
    import aws_cdk as cdk

    app = cdk.App(outdir=outdir)
    if peer == "no-index":
        from audit_stack import AuditStack

        AuditStack(app, NO_INDEX_STACK_NAME, pipeline_props={"event_type_index": False})
    elif peer == "solutions-constructs":
        from bench.peers.solutions import SolutionsConstructsAuditStack

        SolutionsConstructsAuditStack(app, SOLUTIONS_STACK_NAME)
    else:
        raise SystemExit(f"unknown peer {peer!r}: no-index or solutions-constructs")
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
