"""``audit``'s command line: the options and commands, wired to the command modules.

Argument wiring only: each command's AWS logic is in its own module (``trail``, ``events``,
``dlq``...), output in ``render``, and every error's exit code in ``errors``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn
from urllib.parse import urlsplit

from audit_stack import endpoints
from audit_stack.cli import (
    checkpoint,
    delete_account,
    dlq,
    events,
    prove,
    publish,
    redact,
    seal,
    status,
    trail,
    verify,
)
from audit_stack.cli.dates import event_key_bounds, iso_moment
from audit_stack.cli.errors import EXIT_ERROR, EXIT_USAGE, UsageError, report
from audit_stack.cli.target import DEFAULT_STACK, Target, TargetOptions, resolve_target

__all__ = ["build_parser", "main"]

_DISTRIBUTION: Final = "audit-pipeline"
_OUTPUTS: Final = ("table", "json")
_EPILOG: Final = (
    "exit codes: 0 done / HEALTHY, 1 operational error (credentials, stack not found, "
    "endpoint unreachable, AWS error) or verify / verify-proof findings, 2 usage error, "
    "3 UNHEALTHY, 4 dlq redrive refused (unrecordable messages; --force), 130 interrupted"
)

Command = Callable[[Target, argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """Usage errors become one line and exit code 2, through main()."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _version() -> str:
    try:
        return importlib.metadata.version(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _target_options(*, for_subcommand: bool) -> argparse.ArgumentParser:
    """Options accepted before and after the command (``audit --local status`` and
    ``audit status --local``); after it, only what is given overrides what came before."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if for_subcommand else value

    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("target")
    group.add_argument(
        "--stack",
        default=default(None),
        metavar="NAME",
        help=f"CloudFormation stack holding the pipeline (default {DEFAULT_STACK}; on an "
        "emulator, the stack it runs)",
    )
    group.add_argument(
        "--pipeline",
        default=default(None),
        metavar="ID",
        help="the AuditPipeline's construct id or path in the stack (default: the only one)",
    )
    group.add_argument("--profile", default=default(None), help="AWS profile (credential chain)")
    group.add_argument(
        "--region",
        default=default(None),
        help=f"AWS region (default: your configuration; {endpoints.LOCAL_REGION} for an emulator)",
    )
    # Not an argparse mutually exclusive group: those lose their argument group in a parent parser.
    group.add_argument(
        "--endpoint-url",
        default=default(None),
        metavar="URL",
        help="a running local emulator (python -m audit_stack.local up --port N)",
    )
    group.add_argument(
        "--local",
        action="store_true",
        default=default(False),
        help=f"the local emulator at {endpoints.LOCAL_ENDPOINT_URL} "
        "(python -m audit_stack.local up)",
    )
    output = options.add_argument_group("output")
    output.add_argument(
        "--output",
        choices=_OUTPUTS,
        default=default("table"),
        help="table for people (default), json for scripts",
    )
    output.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const="json",
        default=argparse.SUPPRESS,
        help="the same as --output json",
    )
    return options


def _time_range(parser: argparse.ArgumentParser, *, paged: bool) -> None:
    parser.add_argument(
        "--since",
        type=iso_moment,
        metavar="WHEN",
        help="from this ISO 8601 date or date-time (inclusive; naive = UTC)",
    )
    parser.add_argument(
        "--until",
        type=iso_moment,
        metavar="WHEN",
        help="up to this date (the whole day) or date-time (inclusive; naive = UTC)",
    )
    if paged:
        parser.add_argument(
            "--limit", type=_positive_int, default=100, help="most events shown (default 100)"
        )
        parser.add_argument(
            "--cursor",
            help="continue below the last event of an earlier answer (its next_cursor; the "
            "table's last line prints the command)",
        )


def build_parser() -> argparse.ArgumentParser:
    """The ``audit`` command line (argparse), every command and option."""
    common = _target_options(for_subcommand=True)
    parser = _Parser(
        prog="audit",
        description="Operate the audit pipeline: a deployed stack, or the local emulator.",
        epilog=_EPILOG,
        parents=[_target_options(for_subcommand=False)],
    )
    parser.add_argument("--version", action="version", version=f"audit {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group: Any, name: str, handler: Command, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(
            name, help=help_text, description=help_text, parents=[common]
        )
        sub.set_defaults(handler=handler)
        return sub

    delete = command(
        commands,
        "delete-account",
        delete_account.run,
        'invoke the publisher with {"email": EMAIL}; print the published event',
    )
    delete.add_argument("email", metavar="EMAIL")
    delete.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="the caller's request id (1-128 printable ASCII): retries with it are recorded once",
    )

    publish_parser = command(
        commands,
        "publish",
        publish.run,
        "publish one audit event of any type of the pipeline's catalogue; print it",
    )
    publish.add_arguments(publish_parser)

    trail_parser = command(
        commands, "trail", trail.run, "the audit events about one subject, newest first"
    )
    trail_parser.add_argument(
        "subject",
        metavar="SUBJECT",
        nargs="?",
        help="an e-mail address (case-insensitive) or any other identifier (as published); - "
        "reads it from standard input. A subject given here is visible in shell history and the "
        "process list: prefer - or --subject-file",
    )
    trail_parser.add_argument(
        "--subject-file",
        type=Path,
        metavar="FILE",
        help="read the subject from FILE (one line) instead of SUBJECT",
    )
    trail_parser.add_argument(
        "--include-clear",
        action="store_true",
        help="also look for records written in clear before version 2 (the address itself as "
        "their key, in its NFC and NFD spellings); sends the address to DynamoDB as a query "
        "key, so only for pipelines that ever recorded in clear. Always on for a pipeline "
        "without a pseudonym secret (subject_in_clear)",
    )
    trail_parser.add_argument("--type", help="only events of this type, e.g. AccountDeleted")
    _time_range(trail_parser, paged=True)
    events_parser = command(
        commands, "events", events.run, "events of one type in a time range, newest first"
    )
    events_parser.add_argument("--type", required=True, help="event type, e.g. AccountDeleted")
    _time_range(events_parser, paged=True)

    dlq_parser = commands.add_parser(
        "dlq", help="the dead-letter queue: show, redrive", description="The dead-letter queue."
    )
    dlq_commands = dlq_parser.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    show = command(
        dlq_commands,
        "show",
        dlq.run_show,
        "what is in the dead-letter queue and why the recorder refuses it; consumes nothing",
    )
    show.add_argument(
        "--limit", type=_positive_int, default=100, help="most messages shown (default 100)"
    )
    show.add_argument(
        "--show-bodies",
        action="store_true",
        help="also show the message bodies and attribute values, which may hold personal data "
        "(redacted by default, in --json too)",
    )
    redrive = command(
        dlq_commands,
        "redrive",
        dlq.run_redrive,
        "move the dead-letter queue's messages back to the queue (after the fix); refused "
        "(exit code 4) while some are unrecordable, unless --force",
    )
    redrive.add_argument(
        "--max",
        type=_positive_int,
        metavar="N",
        help="move at most N messages (by receive/send/delete: a message move task has no count)",
    )
    redrive.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for the message move task (default 600)",
    )
    redrive.add_argument(
        "--force",
        action="store_true",
        help="move the messages even when the recorder's parser refuses some (they come back)",
    )
    command(
        commands,
        "status",
        status.run,
        "queue depths, age of the oldest message, alarm states; exit code 3 when UNHEALTHY",
    )
    command(
        commands,
        "seal",
        seal.run,
        "sign a digest now (records reach the sealer through the table's stream)",
    )
    verify_parser = command(
        commands,
        "verify",
        verify.run,
        "check the digest chain, its signatures and every record; exit code 1 on any finding",
    )
    verify_parser.add_argument(
        "--since",
        type=iso_moment,
        metavar="WHEN",
        help="check only the digests sealed from this date or date-time and the records they "
        "list (records in no digest are always checked, whatever time they claim)",
    )
    verify_parser.add_argument(
        "--public-key",
        type=Path,
        metavar="FILE",
        help="verify with this PEM public key (offline) instead of kms:GetPublicKey",
    )
    verify_parser.add_argument(
        "--export-public-key",
        type=Path,
        metavar="FILE",
        help="write the signing key's public key (PEM) to FILE and stop",
    )
    verify_parser.add_argument(
        "--from",
        dest="from_checkpoint",
        type=Path,
        metavar="FILE",
        help="also prove that today's log extends this checkpoint (saved by `audit checkpoint`)",
    )
    checkpoint_parser = command(
        commands,
        "checkpoint",
        checkpoint.run,
        "export the newest signed checkpoint (tree size, Merkle root), for a witness to keep",
    )
    checkpoint_parser.add_argument("--out", type=Path, required=True, metavar="FILE")
    prove_parser = command(
        commands,
        "prove",
        prove.run_prove,
        "write a self-contained inclusion proof of one record (checkable offline)",
    )
    prove_parser.add_argument(
        "record", metavar="KEY_OR_EVENT_ID", help="the record's event key, or its event id"
    )
    prove_parser.add_argument("--out", type=Path, required=True, metavar="FILE")
    verify_proof_parser = command(
        commands,
        "verify-proof",
        prove.run_verify_proof,
        "check an inclusion proof offline with the public key; exit code 1 if it fails",
    )
    verify_proof_parser.add_argument("proof", type=Path, metavar="PROOF_FILE")
    verify_proof_parser.add_argument(
        "--public-key", type=Path, required=True, metavar="FILE", help="the PEM public key"
    )
    verify_proof_parser.set_defaults(offline=True)
    redact_parser = command(
        commands,
        "redact",
        redact.run,
        "lawful erasure: replace a subject's (or one event's) records with stubs that keep "
        "their sealed hash, and seal the redaction (run as the grant_redact break-glass role)",
    )
    redact.add_arguments(redact_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (``audit --help`` lists them)."""
    try:
        arguments = build_parser().parse_args(argv)
        options = _check_usage(arguments)
        handler: Command = arguments.handler
        if getattr(arguments, "offline", False):
            return handler(None, arguments)  # type: ignore[arg-type]  # needs no AWS at all
        return handler(resolve_target(options), arguments)
    except SystemExit as exit_:
        # --help and --version print and exit; any other code stays as argparse meant it.
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`audit ... | head`): stop quietly, and let nothing else write to
        # the closed pipe at interpreter exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except (Exception, KeyboardInterrupt) as error:
        return report(error)


def _check_usage(arguments: argparse.Namespace) -> TargetOptions:
    """What argparse cannot check alone, before anything goes over the network; the target."""
    if arguments.local and arguments.endpoint_url:
        raise UsageError("--local and --endpoint-url exclude each other")
    if arguments.endpoint_url is not None:
        parts = urlsplit(arguments.endpoint_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise UsageError(f"--endpoint-url: {arguments.endpoint_url!r} is not an http(s) URL")
    if getattr(arguments, "email", None) is not None and not arguments.email.strip():
        raise UsageError("EMAIL must not be empty")
    if getattr(arguments, "subject", None) is not None and not arguments.subject.strip():
        name = "--subject" if arguments.command == "publish" else "SUBJECT"
        raise UsageError(f"{name} must not be empty")
    # Raises for --since after --until.
    event_key_bounds(getattr(arguments, "since", None), getattr(arguments, "until", None))
    return TargetOptions(
        stack=arguments.stack,
        pipeline=arguments.pipeline,
        profile=arguments.profile,
        region=arguments.region,
        endpoint_url=arguments.endpoint_url,
        local=arguments.local,
    )
