"""DynamoDB's item size, as it bills writes: one write unit per started 1 KB of it.

The size rule lives in one place, the emulator's request counter (``audit_stack.local.instruments.
metering``), which sizes every PutItem it counts; the benchmark sizes the items it scans
with the same function, so the distribution and the counted write units cannot disagree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from audit_stack.local.instruments.metering import WRITE_UNIT_BYTES, put_item_size


def item_size(item: Mapping[str, Any]) -> int:
    """The size of a low-level DynamoDB item (``{"name": {"S": "..."}}``) in bytes."""
    size = put_item_size(json.dumps({"Item": item}).encode("utf-8"))
    if size is None:
        raise ValueError("not a DynamoDB item")
    return size


def write_units(size: int) -> int:
    """Write request units one write of an item of ``size`` bytes costs."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))
