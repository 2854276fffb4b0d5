"""On the emulator: the sealer, fed by the audit table's stream, reports every write the recorder
did not make — a change, a deletion, an item put without the writer MAC — within one batching
window, and `audit verify` shows its reports (sealed in the digest: they stay)."""

from __future__ import annotations

import json
from typing import Any

from audit_stack.lambda_code import audit_events_module, contract
from audit_stack.local import LocalAuditPipeline

from .conftest import Audit

integrity = audit_events_module("integrity")


def _items(pipeline: LocalAuditPipeline) -> dict[str, dict[str, Any]]:
    items = pipeline.client("dynamodb").scan(TableName=pipeline.table_name)["Items"]
    return {item[contract.SORT_KEY]["S"]: item for item in items}


def test_the_sealer_reports_a_change_a_deletion_and_a_put_without_the_writer_mac(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    for email in ("alice@example.com", "bob@example.com", "carol@example.com"):
        assert audit("delete-account", email).exit_code == 0
    pipeline.run_until_idle(timeout=60)
    assert audit("verify").exit_code == 0
    alice, bob, carol = sorted(_items(pipeline).values(), key=lambda i: i["subject"]["S"])
    # The table's policy denies all three to every principal: these bypass IAM.
    dynamodb = pipeline.client("dynamodb", as_emulator=True)
    changed = {**alice, "source": {"S": "someone-else"}}
    dynamodb.put_item(TableName=pipeline.table_name, Item=changed)
    dynamodb.delete_item(
        TableName=pipeline.table_name,
        Key={name: bob[name] for name in (contract.PARTITION_KEY, contract.SORT_KEY)},
    )
    # A perfect copy of Carol's record under another key, with a correct record_hash: only the
    # writer MAC, which the administrator cannot compute, is wrong.
    forged = integrity.with_record_hash(
        {
            **{k: v for k, v in carol.items() if k != contract.RECORD_HASH_ATTRIBUTE},
            contract.SORT_KEY: {"S": carol[contract.SORT_KEY]["S"] + "0"},
        }
    )
    dynamodb.put_item(TableName=pipeline.table_name, Item=forged)

    pipeline.run_until_idle(timeout=60)  # the stream delivers the three writes to the sealer

    report = audit("verify", "--json")
    assert report.exit_code == 1
    reported = {
        (f["event_key"], f["detail"])
        for f in report.json()["findings"]
        if f["kind"] == "rejected by the sealer"
    }
    assert reported == {
        (alice[contract.SORT_KEY]["S"], "altered after it was written"),
        (bob[contract.SORT_KEY]["S"], "deleted"),
        (forged[contract.SORT_KEY]["S"], "not written by the recorder (no valid writer MAC)"),
    }
    # And the sealer's metric, which the tampered-records alarm watches.
    metric_lines = [json.loads(line) for line in pipeline.logs("sealer") if "_aws" in line]
    assert sum(sum(line.get("TamperedAuditRecords", [])) for line in metric_lines) == 3
