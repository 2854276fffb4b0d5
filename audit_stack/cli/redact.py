"""``audit redact SUBJECT --reason TEXT``: lawful erasure that keeps the proof.

Each of the subject's sealed records (or the one record ``--event-id`` names) has its personal
content replaced by a stub that keeps its key and sealed ``record_hash`` (``redaction.py``), and
an ``AuditRecordRedacted`` entry naming the record, the stub, the reason and the caller is
published through the pipeline, which records and seals it like any event: ``audit verify``
then reports the record as redacted, and a stub no sealed entry names as tampering.

A record written in clear (before pseudonymous subjects; its key is the address) is refused,
or with ``--pseudonymise`` moved in one transaction to a stub under the subject's pseudonym.

Run it as the break-glass principal given ``AuditPipeline.grant_redact``: the table's policy
denies every other principal any update or delete, and that one any put but a stub's. Order,
so that nothing is left half-done: every record is checked first (sealed, unchanged, not in
clear unless pseudonymised), then per record the entry is published
before the stub is written; an entry whose stub was never written is harmless (it vouches only
for that exact stub), and running the command again redacts what is left.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from audit_stack import discovery, lambda_code
from audit_stack.cli import render, trail
from audit_stack.cli.errors import OperatorError, UsageError, error_code
from audit_stack.cli.publish import publish_event
from audit_stack.cli.target import Target
from audit_stack.lambda_code import audit_events_module, contract
from audit_stack.publisher import InvalidPayloadError

if TYPE_CHECKING:
    from audit_events import integrity, redaction
else:
    integrity = audit_events_module("integrity")
    redaction = audit_events_module("redaction")

__all__ = ["REDACT_SOURCE", "Redacted", "add_arguments", "redact_records", "run"]

REDACT_SOURCE = "audit-redact"
"""The ``source`` of the redaction entries ``audit redact`` publishes."""


@dataclass(frozen=True)
class Redacted:
    """One record redacted: its key (the subject is a pseudonym) and the entry's event id."""

    subject: str
    event_key: str
    record_hash: str
    entry_event_id: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``redact``'s arguments (main.py wires the command)."""
    parser.add_argument(
        "subject",
        metavar="SUBJECT",
        nargs="?",
        help="whose records to redact: an e-mail address or identifier; - reads it from "
        "standard input (prefer - or --subject-file: an argument stays in shell history)",
    )
    parser.add_argument(
        "--subject-file", type=Path, metavar="FILE", help="read the subject from FILE"
    )
    parser.add_argument(
        "--event-id",
        metavar="ID",
        help="redact only this record (its event id); alone, or with the subject",
    )
    parser.add_argument(
        "--include-clear",
        action="store_true",
        help="also look the subject up in clear (records written before pseudonymous subjects), "
        "which sends it to DynamoDB as a query key: such records are reported, not redacted",
    )
    parser.add_argument(
        "--pseudonymise",
        action="store_true",
        help="move records written in clear (implies --include-clear) to stubs under the "
        "subject's pseudonym instead of refusing them",
    )
    parser.add_argument(
        "--reason",
        required=True,
        help="why (sealed for good): cite the request, e.g. 'GDPR Art. 17 request #4711'; "
        "no e-mail addresses",
    )


def run(target: Target, arguments: argparse.Namespace) -> int:
    try:
        reason = redaction.check_reason(arguments.reason)
    except redaction.RedactionError as error:
        raise UsageError(str(error)) from None
    subject = None
    if arguments.subject is not None or arguments.subject_file is not None:
        subject = trail.subject_argument(arguments)
    elif arguments.event_id is None:
        raise UsageError("give the subject (SUBJECT, - or --subject-file), --event-id, or both")
    done = redact_records(
        target,
        subject=subject,
        event_id=arguments.event_id,
        reason=reason,
        include_clear=arguments.include_clear or arguments.pseudonymise,
        pseudonymise=arguments.pseudonymise,
    )
    if arguments.output == "json":
        render.print_json({"redacted": [vars(entry) for entry in done]})
        return 0
    if not done:
        print("Nothing to redact: no record matched that was not redacted already.")
        looked_in_clear = arguments.include_clear or arguments.pseudonymise
        if not looked_in_clear and arguments.event_id is None:
            print(
                "Records written in clear (before pseudonymous subjects) were not looked up; "
                "--include-clear reports them."
            )
        return 0
    print(
        f"Redacted {len(done)} record(s); each redaction is recorded as "
        f"{contract.REDACTION_EVENT_TYPE}:"
    )
    print(
        render.table(
            ("SUBJECT", "EVENT KEY", "SEALED HASH", "REDACTION ENTRY"),
            [(d.subject, d.event_key, d.record_hash, d.entry_event_id) for d in done],
        )
    )
    print(f"\nSeal the entries, then check: {target.again('seal')}; {target.again('verify')}")
    return 0


def redact_records(
    target: Target,
    *,
    subject: str | None,
    event_id: str | None,
    reason: str,
    include_clear: bool = False,
    pseudonymise: bool = False,
) -> list[Redacted]:
    """Redact the matching records; every check is made before the first write.

    A subject is looked up under its pseudonym (every version of the secret); in clear too only
    with ``include_clear``: the query would carry the address to DynamoDB, and a record in clear
    cannot be redacted in place (its key is the address): ``pseudonymise`` moves it to a stub
    under the subject's pseudonym (current secret version) in one transaction; else it is
    refused.
    """
    dynamodb = target.client("dynamodb")
    table = target.resource(discovery.TABLE)
    records = _matching(target, dynamodb, table, subject, event_id, include_clear)
    records = [item for item in records if not redaction.is_stub(item)]
    if not records:
        return []
    _refuse_what_cannot_be_redacted(target, records, pseudonymise=pseudonymise)
    secret = _current_secret(target) if any(map(_in_clear, records)) else None
    principal = redaction.principal_of(target.client("sts").get_caller_identity()["Arn"])
    done = []
    for item in records:
        when = datetime.now(UTC).strftime(contract.TIMESTAMP_FORMAT)
        if _in_clear(item):
            assert secret is not None
            stub = redaction.pseudonymised_stub(
                item,
                pseudonym=lambda_code.pseudonymous_subject(
                    trail._normalized(item[contract.PARTITION_KEY]["S"]), secret
                ),
                redacted_at=when,
                reason=reason,
                redacted_by=principal,
            )
        else:
            stub = redaction.redaction_stub(
                item, redacted_at=when, reason=reason, redacted_by=principal
            )
        try:
            published = publish_event(
                target,
                contract.REDACTION_EVENT_TYPE,
                subject=contract.REDACTION_SUBJECT,
                details=redaction.redaction_details(stub),
                source=REDACT_SOURCE,
            )
        except InvalidPayloadError as error:
            raise OperatorError(f"the redaction entry was refused: {error}") from None
        if _in_clear(item):
            _move_to_stub(dynamodb, table, item, stub)
        else:
            _write_stub(target, dynamodb, table, stub)
        done.append(
            Redacted(
                subject=stub[contract.PARTITION_KEY]["S"],
                event_key=stub[contract.SORT_KEY]["S"],
                record_hash=stub[contract.RECORD_HASH_ATTRIBUTE]["S"],
                entry_event_id=published.event_id,
            )
        )
    return done


def _matching(
    target: Target,
    dynamodb: Any,
    table: str,
    subject: str | None,
    event_id: str | None,
    include_clear: bool,
) -> list[dict[str, Any]]:
    if subject is None:
        assert event_id is not None
        return _by_event_id(dynamodb, table, event_id)
    if target.resources.get(discovery.PSEUDONYM_SECRET) is None:
        raise OperatorError(
            "this pipeline records subjects in clear (subject_in_clear): a redaction keeps a "
            "record's key, which there is the address itself, so it cannot erase it"
        )
    # The subject's partitions as `audit trail` finds them: its pseudonym under every readable
    # version of the secret, and in clear (both spellings) only when asked.
    found_in = trail.lookup(target, subject, include_clear=include_clear)
    for warning in found_in.warnings:
        print(f"audit: warning: {warning}", file=sys.stderr)
    found = []
    for partition in found_in.partitions:
        found.extend(_partition(dynamodb, table, partition))
    if event_id is not None:
        found = [item for item in found if _event_id(item) == event_id]
    return found


def _partition(dynamodb: Any, table: str, subject: str) -> list[dict[str, Any]]:
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": contract.PARTITION_KEY},
        "ExpressionAttributeValues": {":s": {"S": subject}},
        "ConsistentRead": True,
    }
    from audit_stack import verify as checks  # cryptography only for the integrity commands

    return checks.query_all(dynamodb, request)


def _by_event_id(dynamodb: Any, table: str, event_id: str) -> list[dict[str, Any]]:
    request: dict[str, Any] = {
        "TableName": table,
        "ConsistentRead": True,
        "FilterExpression": "#i = :i",
        "ExpressionAttributeNames": {"#i": "event_id"},
        "ExpressionAttributeValues": {":i": {"S": event_id}},
    }
    items: list[dict[str, Any]] = []
    while True:
        page = dynamodb.scan(**request)
        # Not the idempotency marker that shares the event id: it holds nothing personal.
        items.extend(
            item
            for item in page["Items"]
            if item.get(contract.SORT_KEY, {}).get("S") != contract.IDEMPOTENCY_MARKER_SORT_KEY
        )
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    if not items:
        raise OperatorError(f"no record has the event id {event_id!r}")
    return items


def _event_id(item: dict[str, Any]) -> str:
    return str(item.get("event_id", {}).get("S", ""))


def _in_clear(item: dict[str, Any]) -> bool:
    """A record whose subject (its key) is the address or identifier itself."""
    subject_type: str = item.get(contract.SUBJECT_TYPE_ATTRIBUTE, {}).get("S", "")
    return subject_type != contract.SUBJECT_TYPE_PSEUDONYM


def _current_secret(target: Target) -> bytes:
    secret_arn = target.resources.get(discovery.PSEUDONYM_SECRET)
    if secret_arn is None:
        raise OperatorError(
            "this pipeline has no pseudonym secret (subject_in_clear): nothing to pseudonymise "
            "with; nothing was redacted"
        )
    return trail._secret_versions(target, secret_arn)[0][0]


def _refuse_what_cannot_be_redacted(
    target: Target, records: list[dict[str, Any]], *, pseudonymise: bool
) -> None:
    """Every reason not to start, before anything is written."""
    from audit_stack import verify as checks  # cryptography only for the integrity commands

    in_clear = [item for item in records if _in_clear(item)]
    if in_clear and not pseudonymise:
        raise OperatorError(
            f"{len(in_clear)} matching record(s) name the subject in clear (written before "
            "pseudonymous subjects): a redaction in place keeps a record's key, which there is "
            "the address itself (--pseudonymise moves them under the pseudonym); nothing was "
            "redacted"
        )
    entries = [item for item in records if redaction.redaction_entry(item) is not None]
    if entries:
        raise OperatorError("redaction entries are not redacted: they hold no personal data")
    digests = checks.digest_items(
        target.client("dynamodb"), target.resource(discovery.DIGEST_TABLE), target.client("s3")
    )
    sealed: set[tuple[str, str, str]] = set()
    for item in digests:
        try:
            digest = integrity.parse_digest(
                item.get(contract.DIGEST_BODY_ATTRIBUTE, {}).get("S", "")
            )
        except integrity.IntegrityFormatError:
            continue  # `audit verify` reports it
        sealed.update((ref.subject, ref.event_key, ref.record_hash) for ref in digest.records)
    unsealed = [
        item
        for item in records
        if (
            item[contract.PARTITION_KEY]["S"],
            item[contract.SORT_KEY]["S"],
            item.get(contract.RECORD_HASH_ATTRIBUTE, {}).get("S", ""),
        )
        not in sealed
    ]
    if unsealed:
        # The sealer reads each record back before signing it: a stub would be rejected as
        # tampered, and the record never sealed.
        raise OperatorError(
            f"{len(unsealed)} matching record(s) are not sealed yet (or no longer match what "
            f"was sealed): seal first ({target.again('seal')}); nothing was redacted"
        )
    if in_clear:
        _current_secret(target)  # readable, before anything is written
    for item in records:
        try:
            redaction.redaction_stub(item, redacted_at="-", reason="-", redacted_by="-")
        except redaction.RedactionError as error:
            raise OperatorError(f"{error}; nothing was redacted") from None


def _move_to_stub(dynamodb: Any, table: str, item: dict[str, Any], stub: dict[str, Any]) -> None:
    """One transaction: put the stub under the pseudonym (a new key), delete the item in clear
    if it is still the sealed one. The table's policy lets a redactor put only stubs."""
    key = {name: item[name] for name in (contract.PARTITION_KEY, contract.SORT_KEY)}
    try:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": stub,
                        "ConditionExpression": "attribute_not_exists(#s)",
                        "ExpressionAttributeNames": {"#s": contract.PARTITION_KEY},
                    }
                },
                {
                    "Delete": {
                        "TableName": table,
                        "Key": key,
                        "ConditionExpression": "#h = :h",
                        "ExpressionAttributeNames": {"#h": contract.RECORD_HASH_ATTRIBUTE},
                        "ExpressionAttributeValues": {":h": item[contract.RECORD_HASH_ATTRIBUTE]},
                    }
                },
            ]
        )
    except ClientError as error:
        code = error_code(error)
        if code == "AccessDeniedException":
            raise OperatorError(
                "not allowed to pseudonymise: the table's policy lets only the principals "
                "given AuditPipeline.grant_redact put a stub and delete a record"
            ) from None
        if code == "TransactionCanceledException":
            raise OperatorError(
                f"{stub[contract.SORT_KEY]['S']} changed meanwhile; run the command again"
            ) from None
        raise


def _write_stub(target: Target, dynamodb: Any, table: str, stub: dict[str, Any]) -> None:
    """The one UpdateItem the table's policy allows a redactor: REMOVE the personal attributes,
    SET the redaction's three; never names record_hash (which keeps the sealed leaf)."""
    names = {f"#p{index}": name for index, name in enumerate(contract.PERSONAL_ATTRIBUTES)}
    names |= {
        "#s": contract.PARTITION_KEY,
        "#at": contract.REDACTED_AT_ATTRIBUTE,
        "#why": contract.REDACTION_REASON_ATTRIBUTE,
        "#by": contract.REDACTED_BY_ATTRIBUTE,
    }
    removed = ", ".join(name for name in names if name.startswith("#p"))
    try:
        dynamodb.update_item(
            TableName=table,
            Key={
                contract.PARTITION_KEY: stub[contract.PARTITION_KEY],
                contract.SORT_KEY: stub[contract.SORT_KEY],
            },
            UpdateExpression=f"SET #at = :at, #why = :why, #by = :by REMOVE {removed}",
            ConditionExpression="attribute_exists(#s) AND attribute_not_exists(#at)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                ":at": stub[contract.REDACTED_AT_ATTRIBUTE],
                ":why": stub[contract.REDACTION_REASON_ATTRIBUTE],
                ":by": stub[contract.REDACTED_BY_ATTRIBUTE],
            },
            ReturnValues="NONE",
        )
    except ClientError as error:
        code = error_code(error)
        if code == "AccessDeniedException":
            raise OperatorError(
                "not allowed to redact: the table's policy lets only the principals given "
                "AuditPipeline.grant_redact update a record (a break-glass role)"
            ) from None
        if code == "ConditionalCheckFailedException":
            raise OperatorError(
                f"{stub[contract.SORT_KEY]['S']} was redacted meanwhile; run the command again"
            ) from None
        raise
