"""The README's architecture diagram is the one drawn from the synthesized template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from audit_stack.diagram import mermaid_from_template, readme_block, replace_readme_block

ROOT = Path(__file__).resolve().parents[2]


def test_committed_readme_diagram_matches_the_template(template_json: dict[str, Any]) -> None:
    assert readme_block(template_json) in (ROOT / "README.md").read_text(), (
        "README diagram is stale: run `make diagram`"
    )


def test_diagram_shows_every_data_path_hop(template_json: dict[str, Any]) -> None:
    diagram = mermaid_from_template(template_json)
    for expected in (
        '"sns:Publish"',
        '"filter: event_type in AccountDeleted, AuditRecordRedacted"',
        '"batch 10, partial failures"',
        '"after 5 receives"',
        '"dynamodb:PutItem"',
        '"dynamodb:PartiQLInsert"',
        '"stream, batch 10000, window 300 s"',
        '"kms:Sign"',
        '"invokes"',
        '"undeliverable"',
        "visible + inflight &ge; 1",
        "GSI by-event-type-shard",
    ):
        assert expected in diagram
    # The pseudonym secret, and who reads it.
    assert diagram.count('-. "pseudonym key" .->') == 2
    # The writer key, and the two functions that read it.
    assert diagram.count('-. "writer key" .->') == 2
    assert 'PseudonymSecret<br/>generated at deploy, 64 chars"]' in diagram


def test_diagram_changes_when_the_template_changes(template_json: dict[str, Any]) -> None:
    changed = {**template_json, "Resources": dict(template_json["Resources"])}
    for logical_id, resource in changed["Resources"].items():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            changed["Resources"][logical_id] = {
                **resource,
                "Properties": {**resource["Properties"], "BatchSize": 3},
            }
    assert readme_block(changed) != readme_block(template_json)
    assert '"batch 3, partial failures"' in mermaid_from_template(changed)


def test_readme_without_markers_is_an_error(template_json: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no diagram markers"):
        replace_readme_block("# no diagram here\n", template_json)
