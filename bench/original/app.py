"""Synthesize the original configuration: ``python -m bench.original.app <outdir>``."""

from __future__ import annotations

import sys

STACK_NAME = "OriginalAuditStack"


def main(outdir: str) -> None:
    """Write the cloud assembly of OriginalAuditStack into ``outdir``."""
    # Imported here: the benchmark reads STACK_NAME without starting jsii's Node.js kernel.
    import aws_cdk as cdk

    from bench.original.stack import OriginalAuditStack

    app = cdk.App(outdir=outdir)
    OriginalAuditStack(app, STACK_NAME)
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1])
