"""``audit trail SUBJECT``: the audit events about one subject (an e-mail address or any
identifier), of every type, newest first, a page at a time."""

from __future__ import annotations

import argparse
import sys
import unicodedata
from dataclasses import dataclass, field
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
    "ROTATION_UNLISTED",
    "ROTATION_UNREADABLE",
    "SCOPE",
    "Lookup",
    "account_trail",
    "lookup",
    "redacted_text",
    "run",
    "subject_argument",
]

SCOPE: Final = "a subject's trail"
"""What a ``trail`` cursor continues."""
DETAILS_NOT_STORED: Final = "(no personal details stored)"
"""How a record whose subject is a pseudonym shows its details: none are stored."""
ROTATION_UNLISTED: Final = (
    "not allowed to list the pseudonym secret's versions (secretsmanager:ListSecretVersionIds): "
    "only records under its current version are shown; records written before a rotation are "
    "missing. Have your role granted with AuditPipeline.grant_lookup"
)
"""Said on standard error (and in ``--json``'s ``warnings``) when older key versions are unknown."""
ROTATION_UNREADABLE: Final = (
    "{count} older version(s) of the pseudonym secret could not be read (access denied): "
    "records written under them are not shown"
)
_COLUMNS: Final = ("occurred_at", "event_type", "event_id", "source", "details")


@dataclass(frozen=True)
class Lookup:
    """Where a subject's records are: the partition keys to query, and what could not be
    searched (said to the operator, never left out silently)."""

    partitions: list[str]
    warnings: list[str] = field(default_factory=list)


def lookup(target: Target, subject: str, *, include_clear: bool = False) -> Lookup:
    """The partitions of ``subject``'s records, normalised as producers normalise it
    (``audit_events.event.normalize_subject``).

    With a pseudonym secret: its pseudonym under each readable version of the secret (rotation
    gives a subject a new one), and, only with ``include_clear``, the subject in clear as
    written before version 2 (its NFC and NFD spellings: version 1 did not normalise), so the
    address is not sent to DynamoDB as a key on every lookup. Without a secret
    (``subject_in_clear``), the subject in clear always.
    """
    normalized = _normalized(subject)
    secret_arn = target.resources.get(discovery.PSEUDONYM_SECRET)
    partitions: list[str] = []
    warnings: list[str] = []
    if secret_arn:
        secrets, warnings = _secret_versions(target, secret_arn)
        for secret in secrets:
            pseudonym = lambda_code.pseudonymous_subject(normalized, secret)
            if pseudonym not in partitions:
                partitions.append(pseudonym)
    if include_clear or not secret_arn:
        partitions.extend(dict.fromkeys([normalized, unicodedata.normalize("NFD", normalized)]))
    return Lookup(partitions, warnings)


def account_trail(
    target: Target,
    subject: str,
    *,
    limit: int,
    since: Moment | None = None,
    until: Moment | None = None,
    event_type: str | None = None,
    cursor: str | None = None,
    include_clear: bool = False,
    found: Lookup | None = None,
) -> Page:
    """The subject's events of every type, newest first, in the partitions of ``lookup``
    (``found``, when already looked up)."""
    found = found or lookup(target, subject, include_clear=include_clear)
    return query_events(
        target.client("dynamodb"),
        target.resource(discovery.TABLE),
        partition_attribute=contract.PARTITION_KEY,
        partitions=found.partitions,
        scope=SCOPE,
        limit=limit,
        since=since,
        until=until,
        event_type=event_type,
        cursor=cursor,
    )


def run(target: Target, arguments: argparse.Namespace) -> int:
    subject = subject_argument(arguments)
    include_clear: bool = getattr(arguments, "include_clear", False)
    found = lookup(target, subject, include_clear=include_clear)
    for warning in found.warnings:
        print(f"audit: warning: {warning}", file=sys.stderr)
    page = account_trail(
        target,
        subject,
        limit=arguments.limit,
        since=arguments.since,
        until=arguments.until,
        event_type=arguments.type,
        cursor=arguments.cursor,
        found=found,
    )
    if arguments.output == "json":
        render.print_json({**page.to_dict(), "warnings": found.warnings})
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
            *(["--include-clear"] if include_clear else []),
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


def _secret_versions(target: Target, secret_arn: str) -> tuple[list[bytes], list[str]]:
    """Every readable version of the pseudonym secret, current first, and a warning for each
    kind of version that could not be read (its records are then not found)."""
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
        versions = _version_ids(secrets, secret_arn)
    except ClientError as error:
        if error_code(error) != "AccessDeniedException":
            raise
        return values, [ROTATION_UNLISTED]
    unreadable = 0
    for version_id in versions:
        if version_id == current["VersionId"]:
            continue
        try:
            older = secrets.get_secret_value(SecretId=secret_arn, VersionId=version_id)
        except ClientError as error:
            code = error_code(error)
            if code == "ResourceNotFoundException":
                continue  # removed since it was listed: nothing under it can be found anyway
            if code not in {"AccessDeniedException", "DecryptionFailure"}:
                raise
            unreadable += 1
            continue
        if "SecretString" in older:
            values.append(older["SecretString"].encode())
    if unreadable:
        return values, [ROTATION_UNREADABLE.format(count=unreadable)]
    return values, []


def _version_ids(secrets: Any, secret_arn: str) -> list[str]:
    """Every version id of the secret, deprecated ones included, across pages."""
    ids: list[str] = []
    request: dict[str, Any] = {"SecretId": secret_arn, "IncludeDeprecated": True}
    while True:
        listed = secrets.list_secret_version_ids(**request)
        ids.extend(version["VersionId"] for version in listed.get("Versions", []))
        if not listed.get("NextToken"):
            return ids
        request["NextToken"] = listed["NextToken"]


def redacted_text(event: dict[str, Any]) -> str:
    """How a redacted record shows in place of its details: when and why (``--json`` adds by
    whom: ``redacted_by``)."""
    return (
        f"(redacted {str(event.get(contract.REDACTED_AT_ATTRIBUTE, ''))[:10]}: "
        f"{event.get(contract.REDACTION_REASON_ATTRIBUTE, '')})"
    )
