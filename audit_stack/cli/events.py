"""``audit events --type T``: events of one type in a time range (the sharded by-type index)."""

from __future__ import annotations

import argparse
from typing import Final

from audit_stack import discovery
from audit_stack.cli import render
from audit_stack.cli.dates import Moment
from audit_stack.cli.errors import OperatorError
from audit_stack.cli.queries import Page, print_page, query_events, range_options
from audit_stack.cli.target import Target
from audit_stack.lambda_code import contract

__all__ = ["events_of_type", "run", "scope"]

_COLUMNS: Final = ("occurred_at", "subject", "event_id", "source")


def scope(event_type: str) -> str:
    """What an ``events`` cursor continues."""
    return f"events of type {event_type!r}"


def events_of_type(
    target: Target,
    event_type: str,
    *,
    limit: int,
    since: Moment | None = None,
    until: Moment | None = None,
    cursor: str | None = None,
) -> Page:
    """Events of one type, newest first: each shard of the type is queried in parallel and the
    answers are merged by event key."""
    shards = target.event_type_index_shards
    if not shards:
        raise OperatorError(
            f"stack {target.stack!r} has no by-type index (AuditPipeline event_type_index=False)"
            f": list an account's events with `{target.again('trail')} EMAIL`"
        )
    return query_events(
        target.client("dynamodb"),
        target.resource(discovery.TABLE),
        partition_attribute=contract.EVENT_TYPE_SHARD_ATTRIBUTE,
        partitions=[f"{event_type}#{shard}" for shard in range(shards)],
        index=contract.EVENT_TYPE_INDEX,
        scope=scope(event_type),
        limit=limit,
        since=since,
        until=until,
        cursor=cursor,
    )


def run(target: Target, arguments: argparse.Namespace) -> int:
    page = events_of_type(
        target,
        arguments.type,
        limit=arguments.limit,
        since=arguments.since,
        until=arguments.until,
        cursor=arguments.cursor,
    )
    if arguments.output == "json":
        render.print_json(page.to_dict())
        return 0
    print_page(
        page,
        columns=_COLUMNS,
        title=f"of type {arguments.type}",
        since=arguments.since,
        until=arguments.until,
        limit=arguments.limit,
        again=target.again(
            "events",
            "--type",
            arguments.type,
            *range_options(arguments.since, arguments.until, arguments.limit),
        ),
    )
    return 0
