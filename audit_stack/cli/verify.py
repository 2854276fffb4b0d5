"""``audit verify``: check the digest chain, each digest's signature and each record, the
chain against the checkpoints anchored in S3 (Object Lock), and, with ``--from``, that today's
log extends a checkpoint saved earlier.

The checks themselves are ``audit_stack.verify`` (pure, and cryptography only for this command).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from audit_stack import discovery
from audit_stack.cli import render
from audit_stack.cli.errors import EXIT_ERROR, EXIT_OK, UsageError
from audit_stack.cli.target import Target
from audit_stack.lambda_code import contract

__all__ = ["AnchorSettings", "anchor_settings", "public_key_for", "run", "utc_now"]

_DEFAULT_HEARTBEAT_SECONDS = 3600
_DEFAULT_SEAL_INTERVAL_SECONDS = 300


@dataclass(frozen=True)
class AnchorSettings:
    """Where the sealer anchors checkpoints, and the longest allowed silence between two."""

    bucket: str | None
    max_gap: timedelta
    seal_window: timedelta
    """how long a new record may take to reach a digest (seal interval + clock margin)"""


def anchor_settings(target: Target) -> AnchorSettings:
    """The anchor bucket (the pipeline's own, or the one the sealer is configured with) and the
    heartbeat + seal interval (+ tolerance) the sealer runs with."""
    from audit_stack import verify as checks

    environment: dict[str, str] = {}
    try:
        configuration = target.client("lambda").get_function_configuration(
            FunctionName=target.resource(discovery.SEALER)
        )
        environment = configuration.get("Environment", {}).get("Variables", {})
    except ClientError:
        pass  # the pipeline's own bucket is still found by its mark; the defaults apply

    def seconds(name: str, default: int) -> int:
        try:
            return int(environment.get(name, default))
        except ValueError:
            return default

    seal_interval = seconds(contract.ENV_SEAL_INTERVAL_SECONDS, _DEFAULT_SEAL_INTERVAL_SECONDS)
    gap = timedelta(
        seconds=seconds(contract.ENV_HEARTBEAT_SECONDS, _DEFAULT_HEARTBEAT_SECONDS) + seal_interval
    )
    bucket = target.resources.get(discovery.ANCHOR_BUCKET) or environment.get(
        contract.ENV_ANCHOR_BUCKET
    )
    return AnchorSettings(
        bucket or None,
        gap + checks.ANCHOR_GAP_TOLERANCE,
        timedelta(seconds=seal_interval + contract.CLOCK_MARGIN_SECONDS),
    )


def utc_now() -> datetime:
    """The check's clock, which decides whether a sealed expiry has passed (a seam: tests
    replace it to look at the log as it will be after DynamoDB's TTL ran)."""
    return datetime.now(UTC)


def public_key_for(target: Target | None, key_file: Path | None) -> Any:
    """The signing key's public key: from ``--public-key`` (offline), else kms:GetPublicKey."""
    from audit_stack import verify as checks

    if key_file is not None:
        try:
            return checks.load_public_key(key_file.read_bytes())
        except (OSError, ValueError) as error:
            raise UsageError(f"--public-key {key_file}: {error}") from None
    if target is None:
        raise UsageError("--public-key FILE is required offline")
    return checks.kms_public_key(target.client("kms"), target.resource(discovery.SIGNING_KEY))


def run(target: Target, arguments: argparse.Namespace) -> int:
    from audit_stack import verify as checks  # cryptography only for this command

    saved: bytes | None = None
    if getattr(arguments, "from_checkpoint", None):
        try:
            saved = arguments.from_checkpoint.read_bytes()
        except OSError as error:
            raise UsageError(f"--from {arguments.from_checkpoint}: {error}") from None
    public_key = public_key_for(target, arguments.public_key)
    if arguments.export_public_key:
        arguments.export_public_key.write_bytes(checks.public_key_pem(public_key))
        print(f"Wrote the signing key's public key (PEM) to {arguments.export_public_key}")
        return EXIT_OK
    dynamodb = target.client("dynamodb")
    digests = checks.digest_items(
        dynamodb, target.resource(discovery.DIGEST_TABLE), target.client("s3")
    )
    table = target.resource(discovery.TABLE)
    anchors = anchor_settings(target)
    now = utc_now()
    report = checks.verify_log(
        checks.scan_records(dynamodb, table),
        digests,
        public_key,
        since=arguments.since.value if arguments.since else None,
        table=target.resource(discovery.TABLE),
        signing_key=target.resources.get(discovery.SIGNING_KEY),
        now=now,
        seal_window=anchors.seal_window,
    )
    if anchors.bucket is not None:
        anchored = checks.anchored_objects(target.client("s3"), anchors.bucket, table)
        report.anchored = len(anchored)
        report.findings[:0] = checks.verify_anchors(
            digests, anchored, public_key, max_gap=anchors.max_gap, now=now
        )
    if saved is not None:
        report.findings[:0] = checks.verify_extends(saved, digests, public_key)
    if arguments.output == "json":
        render.print_json(report.to_dict())
        return EXIT_OK if report.ok else EXIT_ERROR
    if not digests:
        print(
            "Nothing sealed yet: the chain has no digest"
            + (
                f"; {report.records} record(s) wait to be sealed (the table's stream brings them "
                "to the sealer within seal_interval)."
                if report.records
                else "."
            )
        )
    else:
        print(
            f"Checked {report.digests} digest(s) (last sealed {report.last_sealed_at}) and "
            f"{report.records} record(s), {report.sealed_records} of them sealed"
            + (f"; {report.expired} expired under the retention policy." if report.expired else ".")
        )
    if report.anchored is not None:
        print(f"Checked the chain against {report.anchored} anchored checkpoint(s).")
    if saved is not None and not any(f.kind == checks.ANCHOR for f in report.findings):
        print(f"Today's log extends the checkpoint in {arguments.from_checkpoint}.")
    _print_expired(report, checks.EXPIRED)
    redacted = [f for f in report.findings if f.kind == checks.REDACTED]
    if redacted:
        # Lawful erasures the chain seals: shown, never a failure.
        print(f"\n{len(redacted)} record(s) are redacted (a sealed redaction entry names each):")
        print(
            render.table(
                ("SUBJECT", "EVENT KEY", "REDACTION"),
                [(f.subject, f.event_key, f.detail) for f in redacted],
            )
        )
    pending = [f for f in report.findings if f.kind == checks.PENDING]
    if pending:
        # Still in the table's stream (the sealer's batching window): listed, not a failure;
        # once the window is over, a record in no digest is one.
        minutes = anchors.seal_window.total_seconds() / 60
        print(
            f"\n{len(pending)} record(s) not yet sealed, recorded less than {minutes:g} min ago "
            "(the table's stream brings them to the sealer within seal_interval; not a failure "
            "yet):"
        )
        print(render.table(("SUBJECT", "EVENT KEY"), [(f.subject, f.event_key) for f in pending]))
    if report.ok:
        print(
            "OK: the chain is intact and every "
            + ("sealed " if pending else "")
            + "record matches its digest"
            + (" or a sealed redaction" if redacted else "")
            + ("; the records above are not yet sealed." if pending else ".")
        )
        return EXIT_OK
    problems = [f for f in report.findings if f.kind not in checks.NOT_FAILURES]
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
    return EXIT_ERROR


def _print_expired(report: Any, kind: str) -> None:
    """The sealed records DynamoDB's TTL removed after their sealed expiry: listed, not failed."""
    expired = [f for f in report.findings if f.kind == kind]
    if not expired:
        return
    print(
        f"{len(expired)} record(s) expired under the retention policy (removed after the "
        "expiry their digest sealed; not a failure):"
    )
    print(
        render.table(
            ("SUBJECT", "EVENT KEY", "DIGEST", "DETAIL"),
            [(f.subject, f.event_key, str(f.digest), f.detail) for f in expired],
        )
    )
