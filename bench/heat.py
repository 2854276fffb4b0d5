"""Partition heat: the largest share of writes any one table or index partition key gets.

DynamoDB serves at most 1,000 writes/s per partition, and a write goes to the partition of the
item's table key (and, for an index, of its index key), so the hottest key's share times the
event rate is what one partition must absorb. Measured on keys the recorder writes: from a load
run's table, and from the recorder's own item builder for 10,000 events of one type.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit_stack.lambda_code import contract

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
INDEX_KEY_ATTRIBUTE = contract.EVENT_TYPE_SHARD_ATTRIBUTE
PARTITION_WRITE_LIMIT = 1000.0
"""DynamoDB's writes per second per partition (1,000 WCU)."""
TARGET_RATE = 10_000.0
"""The event rate of one type that the index must absorb (issue 9)."""


@dataclass(frozen=True)
class IndexHeat:
    """How unevenly a set of written index keys spreads over partition keys."""

    source: str
    events: int
    partition_keys: int
    hottest_key: str
    hottest_share: float

    @property
    def writes_per_second_at_target(self) -> float:
        """Writes per second on the hottest index partition key at 10,000 events/s."""
        return self.hottest_share * TARGET_RATE

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "writes_per_second_at_target": self.writes_per_second_at_target}


def index_heat(keys: Iterable[str], source: str) -> IndexHeat:
    """The heat of the index keys written (one per event)."""
    counts = Counter(keys)
    events = sum(counts.values())
    if not events:
        return IndexHeat(source, 0, 0, "", 0.0)
    hottest, count = counts.most_common(1)[0]
    return IndexHeat(source, events, len(counts), hottest, count / events)


def index_shards(template: dict[str, Any]) -> int:
    """The recorder's EVENT_TYPE_INDEX_SHARDS in a template (0: no by-type index)."""
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        if "EVENT_TYPE_INDEX_SHARDS" in variables:
            return int(variables["EVENT_TYPE_INDEX_SHARDS"])
    return 0


def recorder_keys(shards: int, events: int = 10_000) -> list[str]:
    """The index keys the recorder's own code writes for ``events`` AccountDeleted events."""
    return [item[INDEX_KEY_ATTRIBUTE]["S"] for item in recorder_items(shards, events)]


def recorder_table_keys(shards: int, events: int = 10_000) -> list[str]:
    """The table partition keys (subjects) the recorder writes for ``events`` events."""
    return [item[contract.PARTITION_KEY]["S"] for item in recorder_items(shards, events)]


def recorder_items(shards: int, events: int = 10_000) -> list[dict[str, Any]]:
    """The items the recorder's own code writes for ``events`` AccountDeleted events.

    Built as in production: the publisher's event builder (fresh UUID4 ids), then the recorder's
    item builder with the template's shard count.
    """
    if str(LAMBDAS_DIR) not in sys.path:
        sys.path.insert(0, str(LAMBDAS_DIR))
    from audit_events.event import SnsProvenance, build_account_deleted_event
    from audit_events.items import to_item

    provenance = SnsProvenance("bench", "arn:aws:sns:us-east-1:000000000000:bench", "bench")
    now = datetime.now(UTC)
    items = []
    for index in range(events):
        event = build_account_deleted_event(
            {"email": f"heat{index}@bench.example"}, secret=b"bench secret", now=now
        )
        item = to_item(
            event,
            provenance,
            recorded_at="bench",
            event_type_shards=shards,
        )
        items.append(item)
    return items
