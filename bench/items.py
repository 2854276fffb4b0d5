"""DynamoDB's item size, as it bills writes: one write unit per started 1 KB of it.

The size is the sum over attributes of the name's UTF-8 length and the value's size, per the
DynamoDB Developer Guide ("Item sizes and formats"): strings by UTF-8 length, numbers about one
byte per two significant digits plus one, booleans and nulls one byte, lists and maps three bytes
plus one per element plus their elements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

WRITE_UNIT_BYTES = 1024


def item_size(item: Mapping[str, Any]) -> int:
    """The size of a low-level DynamoDB item (``{"name": {"S": "..."}}``) in bytes."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """Write request units one write of an item of ``size`` bytes costs."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def _value_size(value: Mapping[str, Any]) -> int:
    (kind, content), *_ = value.items()
    if kind == "S":
        return len(str(content).encode("utf-8"))
    if kind == "N":
        digits = str(content).lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits.split("e")[0].split("E")[0]) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "B":
        return len(content) if isinstance(content, bytes) else math.ceil(len(content) * 3 / 4)
    if kind == "L":
        elements: Sequence[Mapping[str, Any]] = content
        return 3 + sum(1 + _value_size(element) for element in elements)
    if kind == "M":
        members: Mapping[str, Mapping[str, Any]] = content
        return 3 + sum(
            1 + len(name.encode("utf-8")) + _value_size(member) for name, member in members.items()
        )
    # String, number and binary sets: the sum of their members.
    return sum(_value_size({kind[0]: member}) for member in content)
