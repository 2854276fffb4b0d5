"""``audit publish TYPE --subject S --details JSON``: publish one event of any catalogue type.

Straight to the pipeline's topic with ``AuditPublisher`` (the producers' client), checked against
the pipeline's catalogue as the recorder will check it: a type outside it, or details that break
its schema, are refused here (exit code 2) rather than dropped by the subscription's filter.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any, Final

from audit_stack import discovery
from audit_stack.cli import render
from audit_stack.cli.errors import EXIT_USAGE, OperatorError, UsageError
from audit_stack.cli.target import Target
from audit_stack.lambda_code import audit_events_module
from audit_stack.publisher import AuditPublisher, InvalidPayloadError, PublishedEvent

__all__ = ["DEFAULT_SOURCE", "add_arguments", "publish_event", "run"]

DEFAULT_SOURCE: Final = "audit-cli"
"""The ``source`` of events published with ``audit publish`` unless ``--source`` says."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``publish``'s arguments (main.py wires the command)."""
    parser.add_argument("event_type", metavar="TYPE", help="an event type of the catalogue")
    parser.add_argument(
        "--subject",
        required=True,
        help="whom it is about: an e-mail address or any identifier (pseudonymised by default)",
    )
    parser.add_argument(
        "--details",
        default="{}",
        metavar="JSON",
        help="the event's details, a JSON object matching the type's schema (default {})",
    )
    parser.add_argument("--actor", help="who did it: a role, a service, a user id")
    parser.add_argument(
        "--source", default=DEFAULT_SOURCE, help=f"the producing service (default {DEFAULT_SOURCE})"
    )
    parser.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="the caller's request id (1-128 printable ASCII): one event per type, subject, key",
    )


def publish_event(
    target: Target,
    event_type: str,
    *,
    subject: str,
    details: dict[str, Any],
    actor: str | None = None,
    source: str = DEFAULT_SOURCE,
    idempotency_key: str | None = None,
) -> PublishedEvent:
    """Publish one event to the target pipeline's topic; InvalidPayloadError if refused."""
    secret_arn = target.resources.get(discovery.PSEUDONYM_SECRET)
    catalogue = (
        audit_events_module("catalogue").parse_catalogue(target.event_catalogue)
        if target.event_catalogue
        else None
    )
    publisher = AuditPublisher(
        target.resource(discovery.TOPIC),
        pseudonym_secret_arn=secret_arn,
        subject_in_clear=secret_arn is None,
        event_types=catalogue,
        source=source,
        sns_client=target.client("sns"),
        secrets_client=target.client("secretsmanager"),
    )
    return publisher.publish_event(
        event_type, subject=subject, details=details, actor=actor, idempotency_key=idempotency_key
    )


def run(target: Target, arguments: argparse.Namespace) -> int:
    details = _details(arguments.details)
    try:
        published = publish_event(
            target,
            arguments.event_type,
            subject=arguments.subject,
            details=details,
            actor=arguments.actor,
            source=arguments.source,
            idempotency_key=arguments.idempotency_key,
        )
    except InvalidPayloadError as error:
        # The message names the field and the rule, never the value.
        raise OperatorError(f"the event was not published: {error}", EXIT_USAGE) from None
    result = dataclasses.asdict(published)
    if arguments.output == "json":
        render.print_json(result)
        return 0
    render.print_pairs(result)
    # The subject is not repeated: this output may end up in a ticket or a shared terminal.
    print(
        f"\nRecorded within seconds; see it with: "
        f"{target.again('events', '--type', published.event_type)}"
    )
    return 0


def _details(text: str) -> dict[str, Any]:
    try:
        details = json.loads(text)
    except ValueError:
        raise UsageError("--details: must be valid JSON") from None
    if not isinstance(details, dict):
        raise UsageError("--details: must be a JSON object")
    return details
