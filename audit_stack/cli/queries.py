"""The audit-trail query: a page of events, newest first, over one or more partitions, and the
cursor that continues it. ``trail`` (an account's partitions) and ``events`` (a type's index
shards) both read through :func:`query_events`.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from boto3.dynamodb.types import TypeDeserializer

from audit_stack.cli import render
from audit_stack.cli.dates import Moment, event_key_bounds
from audit_stack.cli.errors import UsageError
from audit_stack.lambda_code import contract

__all__ = [
    "Page",
    "decode_cursor",
    "encode_cursor",
    "print_page",
    "query_events",
    "range_options",
]

# Partitions queried at once (a type's shards, an account's pseudonyms).
_MAX_PARALLEL_QUERIES: Final = 16


@dataclass(frozen=True)
class Page:
    """Up to ``limit`` events, newest first; ``next_cursor`` continues below the last one."""

    events: list[dict[str, Any]]
    more: bool
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"events": self.events, "more": self.more, "next_cursor": self.next_cursor}


def encode_cursor(scope: str, last_key: str) -> str:
    """An opaque cursor: continue ``scope`` (e.g. "events of type 'AccountDeleted'") below
    ``last_key``. It holds an event key and the scope, never an address."""
    document = json.dumps({"scope": scope, "before": last_key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str) -> str:
    """The event key a cursor continues below; UsageError for garbage or another query's."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode()))
        before = document["before"]
        cursor_scope = document["scope"]
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise UsageError(
            "--cursor: not a cursor printed by `audit trail` or `audit events`"
        ) from None
    if cursor_scope != scope or not isinstance(before, str):
        raise UsageError(f"--cursor: it continues {cursor_scope}, not {scope}")
    return before


def query_events(
    dynamodb: Any,
    table: str,
    *,
    partition_attribute: str,
    partitions: Sequence[str],
    scope: str,
    limit: int,
    index: str | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    event_type: str | None = None,
    cursor: str | None = None,
) -> Page:
    """Up to ``limit`` events of the given partitions (of the table, or of ``index``) in a time
    range, newest first by event key, merged across partitions queried in parallel.

    ``event_type`` filters by type; ``cursor`` (from an earlier page of the same ``scope``)
    continues below that page's last event: keys are unique, so nothing repeats or is skipped.
    """
    before = decode_cursor(cursor, scope) if cursor else None
    lower, upper = event_key_bounds(since, until)
    if before is not None:
        upper = before if upper is None else min(upper, before)
    if (lower and upper and lower > upper) or not partitions:
        return Page([], False, None)
    condition, values = _key_range(lower, upper)
    names = {"#pk": partition_attribute, **({"#sk": contract.SORT_KEY} if condition else {})}
    requests = []
    for partition in partitions:
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "#pk = :pk" + condition,
            "ExpressionAttributeNames": dict(names),
            "ExpressionAttributeValues": {":pk": {"S": partition}, **values},
            "ScanIndexForward": False,
        }
        if index is not None:
            request["IndexName"] = index
        if event_type is not None:
            request["FilterExpression"] = "#type = :type"
            request["ExpressionAttributeNames"]["#type"] = contract.EVENT_TYPE_ATTRIBUTE
            request["ExpressionAttributeValues"][":type"] = {"S": event_type}
        else:
            # Pages no bigger than what can be shown, instead of 1 MB from every partition.
            request["Limit"] = limit + 2
        requests.append(request)
    # One more than shown when the cursor's own event may come back and be left out.
    most = limit + (1 if before is not None else 0)
    with ThreadPoolExecutor(max_workers=min(_MAX_PARALLEL_QUERIES, len(requests))) as pool:
        answers = list(pool.map(lambda request: _query(dynamodb, request, most), requests))
    merged = heapq.merge(
        *(items for items, _ in answers),
        key=lambda item: str(item[contract.SORT_KEY]),
        reverse=True,
    )
    wanted = [item for item in merged if before is None or str(item[contract.SORT_KEY]) < before]
    more = len(wanted) > limit or any(more for _, more in answers)
    shown = wanted[:limit]
    next_cursor = (
        encode_cursor(scope, str(shown[-1][contract.SORT_KEY])) if more and shown else None
    )
    return Page(shown, more, next_cursor)


def _query(dynamodb: Any, request: dict[str, Any], limit: int) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` items of a Query (all pages), and whether there are more."""
    deserializer = TypeDeserializer()
    items: list[dict[str, Any]] = []
    while True:
        page = dynamodb.query(**request)
        items += [
            {name: deserializer.deserialize(value) for name, value in item.items()}
            for item in page["Items"]
        ]
        if len(items) > limit:
            return items[:limit], True
        if "LastEvaluatedKey" not in page:
            return items, False
        request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def _key_range(lower: str | None, upper: str | None) -> tuple[str, dict[str, dict[str, str]]]:
    """The sort-key part of a KeyConditionExpression, both ends inclusive."""
    if lower and upper:
        return " AND #sk BETWEEN :since AND :until", {
            ":since": {"S": lower},
            ":until": {"S": upper},
        }
    if lower:
        return " AND #sk >= :since", {":since": {"S": lower}}
    if upper:
        return " AND #sk <= :until", {":until": {"S": upper}}
    return "", {}


def range_options(since: Moment | None, until: Moment | None, limit: int) -> list[str]:
    """The options a command line for the next page repeats: the same range, the same limit."""
    words = []
    for option, moment in (("--since", since), ("--until", until)):
        if moment is not None:
            words += [option, moment.shown()]
    return [*words, "--limit", str(limit)]


def print_page(
    page: Page,
    *,
    columns: Sequence[str],
    title: str,
    since: Moment | None,
    until: Moment | None,
    limit: int,
    again: str,
    shown: Any = None,
) -> None:
    """A page as a table under a one-line summary, and the command line that continues it.

    ``shown(event, column)`` gives a cell's value (default: the event's attribute)."""
    period = (f" since {since.shown()}" if since else "") + (
        f" until {until.shown()}" if until else ""
    )
    if not page.events:
        print(f"No events {title}{period}.")
        return
    value = shown or (lambda event, column: event.get(column, ""))
    print(f"{len(page.events)} event(s) {title}{period}, newest first:\n")
    rows = [[render.cell(value(event, column)) for column in columns] for event in page.events]
    print(render.table([column.upper().replace("_", " ") for column in columns], rows))
    if page.next_cursor:
        print(f"\nMore events match: continue with {again} --cursor {page.next_cursor}")
    elif page.more:
        print(f"\nMore events match: narrow --since/--until or raise --limit ({limit}).")
