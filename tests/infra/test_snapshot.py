"""Snapshot of the whole synthesized template; refresh with `pytest --snapshot-update`."""

from __future__ import annotations

import json
import re
from typing import Any

from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

# Asset hashes change with every Lambda code edit; the snapshot is about infrastructure.
_ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def test_template_matches_snapshot(
    template_json: dict[str, Any], snapshot: SnapshotAssertion
) -> None:
    neutral = json.loads(_ASSET_HASH.sub("<asset-hash>", json.dumps(template_json)))
    assert neutral == snapshot.use_extension(JSONSnapshotExtension)
