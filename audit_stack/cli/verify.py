"""``audit verify``: check the digest chain, each digest's signature and each record.

The checks themselves are ``audit_stack.verify`` (pure, and cryptography only for this command).
"""

from __future__ import annotations

import argparse

from audit_stack import discovery
from audit_stack.cli import render
from audit_stack.cli.errors import EXIT_ERROR, EXIT_OK, UsageError
from audit_stack.cli.target import Target

__all__ = ["run"]


def run(target: Target, arguments: argparse.Namespace) -> int:
    from audit_stack import verify as checks  # cryptography only for this command

    if arguments.public_key:
        try:
            public_key = checks.load_public_key(arguments.public_key.read_bytes())
        except (OSError, ValueError) as error:
            raise UsageError(f"--public-key {arguments.public_key}: {error}") from None
    else:
        public_key = checks.kms_public_key(
            target.client("kms"), target.resource(discovery.SIGNING_KEY)
        )
    if arguments.export_public_key:
        arguments.export_public_key.write_bytes(checks.public_key_pem(public_key))
        print(f"Wrote the signing key's public key (PEM) to {arguments.export_public_key}")
        return EXIT_OK
    dynamodb = target.client("dynamodb")
    digests = checks.digest_items(dynamodb, target.resource(discovery.DIGEST_TABLE))
    report = checks.verify_log(
        checks.scan_records(dynamodb, target.resource(discovery.TABLE)),
        digests,
        public_key,
        since=arguments.since.value if arguments.since else None,
        table=target.resource(discovery.TABLE),
        signing_key=target.resources.get(discovery.SIGNING_KEY),
    )
    if arguments.output == "json":
        render.print_json(report.to_dict())
        return EXIT_OK if report.ok else EXIT_ERROR
    if not digests:
        print(
            "Nothing sealed yet: the chain has no digest"
            + (f"; {report.records} record(s) wait to be sealed" if report.records else "")
            + f". Seal with: {target.again('seal')}"
        )
    else:
        print(
            f"Checked {report.digests} digest(s) (last sealed {report.last_sealed_at}) and "
            f"{report.records} record(s), {report.sealed_records} of them sealed."
        )
    if report.ok:
        print("OK: the chain is intact and every record matches its digest.")
        return EXIT_OK
    pending = [f for f in report.findings if f.kind == checks.PENDING]
    problems = [f for f in report.findings if f.kind != checks.PENDING]
    if problems:
        print(f"\nFAILED: {len(problems)} finding(s):")
        print(
            render.table(
                ("FINDING", "DETAIL", "SUBJECT", "EVENT KEY", "DIGEST"),
                [
                    (
                        f.kind,
                        f.detail,
                        f.subject,
                        f.event_key,
                        "" if f.digest is None else str(f.digest),
                    )
                    for f in problems
                ],
            )
        )
    if pending:
        print(f"\n{len(pending)} record(s) are newer than the last seal (not yet sealed):")
        print(render.table(("SUBJECT", "EVENT KEY"), [(f.subject, f.event_key) for f in pending]))
        print(f"Seal them with: {target.again('seal')}")
    return EXIT_ERROR
