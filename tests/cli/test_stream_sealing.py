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


def _key(item: dict[str, Any]) -> dict[str, Any]:
    return {name: item[name] for name in (contract.PARTITION_KEY, contract.SORT_KEY)}


def _partiql_key(item: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    return (
        f'"{contract.PARTITION_KEY}" = ? AND "{contract.SORT_KEY}" = ?',
        [item[contract.PARTITION_KEY], item[contract.SORT_KEY]],
    )


def _tamper_every_other_way(
    dynamodb: Any, table: str, records: list[dict[str, Any]]
) -> dict[str, str]:
    """Change or delete each of ``records`` through a write API the first test does not use;
    return what the sealer must report, by sort key."""
    batch_changed, batch_deleted, partiql_changed, partiql_deleted, updated, transacted = records
    expected: dict[str, str] = {}
    dynamodb.batch_write_item(
        RequestItems={
            table: [
                {"PutRequest": {"Item": {**batch_changed, "source": {"S": "batch"}}}},
                {"DeleteRequest": {"Key": _key(batch_deleted)}},
            ]
        }
    )
    expected[batch_changed[contract.SORT_KEY]["S"]] = "altered after it was written"
    expected[batch_deleted[contract.SORT_KEY]["S"]] = "deleted"
    where, parameters = _partiql_key(partiql_changed)
    dynamodb.execute_statement(
        Statement=f'UPDATE "{table}" SET "source" = ? WHERE {where}',
        Parameters=[{"S": "partiql"}, *parameters],
    )
    expected[partiql_changed[contract.SORT_KEY]["S"]] = "altered after it was written"
    # moto's PartiQL parser takes no parameters in a DELETE (docs/EMULATOR.md): literals here.
    subject, event_key = (
        partiql_deleted[name]["S"] for name in (contract.PARTITION_KEY, contract.SORT_KEY)
    )
    dynamodb.execute_statement(
        Statement=f'DELETE FROM "{table}" WHERE "{contract.PARTITION_KEY}" = \'{subject}\''
        f" AND \"{contract.SORT_KEY}\" = '{event_key}'"
    )
    expected[partiql_deleted[contract.SORT_KEY]["S"]] = "deleted"
    dynamodb.update_item(
        TableName=table,
        Key=_key(updated),
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "source"},
        ExpressionAttributeValues={":s": {"S": "update"}},
    )
    expected[updated[contract.SORT_KEY]["S"]] = "altered after it was written"
    dynamodb.transact_write_items(
        TransactItems=[{"Put": {"TableName": table, "Item": {**transacted, "source": {"S": "tx"}}}}]
    )
    expected[transacted[contract.SORT_KEY]["S"]] = "altered after it was written"
    return expected


def test_the_sealer_reports_tampering_through_every_other_write_api(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    """BatchWriteItem, PartiQL UPDATE and DELETE, UpdateItem and TransactWriteItems all reach the
    stream, as DynamoDB documents for every write: none is a way round the sealer."""
    earlier = set(_items(pipeline))  # the module's emulator may hold earlier tests' records
    findings_before = _sealer_findings(audit)
    for n in range(6):
        assert audit("delete-account", f"user{n}@example.com").exit_code == 0
    pipeline.run_until_idle(timeout=60)
    assert _sealer_findings(audit) == findings_before
    records = [item for key, item in sorted(_items(pipeline).items()) if key not in earlier]
    assert len(records) == 6
    # The table's policy denies every one of these to every principal: these bypass IAM.
    dynamodb = pipeline.client("dynamodb", as_emulator=True)
    expected = _tamper_every_other_way(dynamodb, pipeline.table_name, records)

    pipeline.run_until_idle(timeout=60)

    assert _sealer_findings(audit) - findings_before == set(expected.items())


def _sealer_findings(audit: Audit) -> set[tuple[str, str]]:
    return {
        (f["event_key"], f["detail"])
        for f in audit("verify", "--json").json()["findings"]
        if f["kind"] == "rejected by the sealer"
    }
