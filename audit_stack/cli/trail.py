"""``audit trail SUBJECT``: the audit events about one subject (an e-mail address or any
identifier), of every type, newest first, a page at a time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import ClientError

from audit_stack import discovery, lambda_code
from audit_stack.cli import render
from audit_stack.cli.dates import Moment
from audit_stack.cli.errors import OperatorError, UsageError, error_code
from audit_stack.cli.queries import Page, print_page, query_events, range_options
from audit_stack.cli.target import Target
from audit_stack.lambda_code import audit_events_module, contract

__all__ = [
    "DETAILS_NOT_STORED",
    "SCOPE",
    "account_trail",
    "redacted_text",
    "run",
    "subject_argument",
]

SCOPE: Final = "a subject's trail"
"""What a ``trail`` cursor continues."""
DETAILS_NOT_STORED: Final = "(no personal details stored)"
"""How a record whose subject is a pseudonym shows its details: none are stored."""
_COLUMNS: Final = ("occurred_at", "event_type", "event_id", "source", "details")


def account_trail(
    target: Target,
    subject: str,
    *,
    limit: int,
    since: Moment | None = None,
    until: Moment | None = None,
    event_type: str | None = None,
    cursor: str | None = None,
) -> Page:
    """The subject's events of every type, newest first.

    ``subject`` is normalised as producers normalise it (``audit_events.event.normalize_subject``:
    an address as deleteAccount's, any other identifier as given, in NFC). Its records are under
    its pseudonym for each version of the pseudonym secret (rotation gives a subject a new one),
    and under the normal form itself for records written in clear (version 1, or
    ``subject_in_clear``).
    """
    normalized = _normalized(subject)
    secret_arn = target.resources.get(discovery.PSEUDONYM_SECRET)
    pseudonyms = (
        [
            lambda_code.pseudonymous_subject(normalized, secret)
            for secret in _secret_versions(target, secret_arn)
        ]
        if secret_arn
        else []
    )
    return query_events(
        target.client("dynamodb"),
        target.resource(discovery.TABLE),
        partition_attribute=contract.PARTITION_KEY,
        partitions=[*pseudonyms, normalized],
        scope=SCOPE,
        limit=limit,
        since=since,
        until=until,
        event_type=event_type,
        cursor=cursor,
    )


def run(target: Target, arguments: argparse.Namespace) -> int:
    subject = subject_argument(arguments)
    page = account_trail(
        target,
        subject,
        limit=arguments.limit,
        since=arguments.since,
        until=arguments.until,
        event_type=arguments.type,
        cursor=arguments.cursor,
    )
    if arguments.output == "json":
        render.print_json(page.to_dict())
        return 0
    # The address is never printed when the stack keeps it out of its records.
    secret = discovery.PSEUDONYM_SECRET in target.resources
    # An address is called one; any other subject is an identifier.
    address = "@" in subject
    what, placeholder = ("address", "EMAIL") if address else ("subject", "SUBJECT")
    title = f"for the given {what}" if secret else f"for {_normalized(subject)}"
    words = ["trail", placeholder if secret else _normalized(subject)]
    print_page(
        page,
        columns=_COLUMNS,
        title=title,
        since=arguments.since,
        until=arguments.until,
        limit=arguments.limit,
        again=target.again(
            *words,
            *(["--type", arguments.type] if arguments.type else []),
            *range_options(arguments.since, arguments.until, arguments.limit),
        ),
        shown=_shown,
    )
    return 0


def subject_argument(arguments: argparse.Namespace) -> str:
    """The subject (an address or an identifier): SUBJECT, or read from standard input (``-``)
    or ``--subject-file``, which keep it out of shell history and the process list. Errors
    never repeat it."""
    path: Path | None = getattr(arguments, "subject_file", None)
    if (arguments.subject is None) == (path is None):
        raise UsageError(
            "give the subject as SUBJECT, as - (read from standard input) or with "
            "--subject-file FILE: exactly one of them"
        )
    if path is not None:
        source = f"--subject-file {path}"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise UsageError(f"{source}: {reason}") from None
    elif arguments.subject == "-":
        source, text = "standard input", sys.stdin.read()
    else:
        subject: str = arguments.subject
        return subject
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise UsageError(f"{source}: must hold exactly one subject, on one line")
    return lines[0]


def _normalized(subject: str) -> str:
    try:
        normalized, _ = audit_events_module("event").normalize_subject(subject.strip())
    except ValueError as error:
        # The event module's message names the field and the rule, never the value.
        raise UsageError(str(error)) from None
    return str(normalized)


def _shown(event: dict[str, Any], column: str) -> Any:
    if column == "details" and contract.REDACTED_AT_ATTRIBUTE in event:
        # A redacted record (audit redact): what happened stays, whose details are gone.
        return redacted_text(event)
    if (
        column == "details"
        and not event.get("details")
        and event.get(contract.SUBJECT_TYPE_ATTRIBUTE) == contract.SUBJECT_TYPE_PSEUDONYM
    ):
        return DETAILS_NOT_STORED
    return event.get(column, "")


def _secret_versions(target: Target, secret_arn: str) -> list[bytes]:
    """Every readable version of the pseudonym secret, current first."""
    secrets = target.client("secretsmanager")
    try:
        current = secrets.get_secret_value(SecretId=secret_arn)
    except ClientError as error:
        if error_code(error) != "AccessDeniedException":
            raise
        raise OperatorError(
            "not allowed to read the pseudonym secret, which turns an address into its "
            f"subject ({secret_arn}): have your role granted with AuditPipeline.grant_lookup"
        ) from None
    values = [current["SecretString"].encode()]
    try:
        listed = secrets.list_secret_version_ids(SecretId=secret_arn, IncludeDeprecated=True)
    except ClientError as error:
        if error_code(error) != "AccessDeniedException":
            raise
        return values  # the current version only: older records may be missed
    for version in listed.get("Versions", []):
        if version["VersionId"] == current["VersionId"]:
            continue
        try:
            older = secrets.get_secret_value(SecretId=secret_arn, VersionId=version["VersionId"])
        except ClientError as error:
            # A version removed meanwhile, or one this principal may not read: skip it.
            if error_code(error) not in {"ResourceNotFoundException", "AccessDeniedException"}:
                raise
            continue
        values.append(older["SecretString"].encode())
    return values


def redacted_text(event: dict[str, Any]) -> str:
    """How a redacted record shows in place of its details: when and why (``--json`` adds by
    whom: ``redacted_by``)."""
    return (
        f"(redacted {str(event.get(contract.REDACTED_AT_ATTRIBUTE, ''))[:10]}: "
        f"{event.get(contract.REDACTION_REASON_ATTRIBUTE, '')})"
    )
