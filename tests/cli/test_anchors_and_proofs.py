"""Anchored checkpoints, saved checkpoints and inclusion proofs, end to end on the emulator:
seal, anchor in the Object Lock bucket, export, prove, tamper, and `audit verify` exits 1."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from audit_stack.cli.main import main
from audit_stack.local import LocalAuditPipeline
from audit_stack.verify import public_key_pem
from tests.e2e.helpers import subject_of

from .conftest import Audit


def _record(audit: Audit, pipeline: LocalAuditPipeline, *emails: str) -> None:
    for email in emails:
        assert audit("delete-account", email).exit_code == 0
    pipeline.run_until_idle(timeout=60)


def _item(pipeline: LocalAuditPipeline, email: str) -> dict[str, Any]:
    subject = subject_of(pipeline, email)
    items = pipeline.client("dynamodb").scan(TableName=pipeline.outputs["TableName"])["Items"]
    (item,) = [i for i in items if i["subject"]["S"] == subject]
    found: dict[str, Any] = item
    return found


def test_seal_anchor_export_prove_then_truncate_and_verify_fails(
    audit: Audit, pipeline: LocalAuditPipeline, tmp_path: Path
) -> None:
    # The table's stream delivers both records to the sealer: digest 1, anchored.
    _record(audit, pipeline, "alice@example.com", "bob@example.com")
    saved = tmp_path / "checkpoint.json"
    exported = audit("checkpoint", "--out", str(saved))
    assert exported.exit_code == 0, exported.stderr
    assert "Wrote checkpoint 1 (2 record(s)" in exported.stdout
    _record(audit, pipeline, "carol@example.com")  # digest 2

    intact = audit("verify", "--from", str(saved))
    assert intact.exit_code == 0, intact.stdout + intact.stderr
    assert "Checked the chain against 2 anchored checkpoint(s)." in intact.stdout
    assert f"Today's log extends the checkpoint in {saved}." in intact.stdout
    assert audit("verify", "--json").json()["anchored_checkpoints"] == 2
    # The emulator deployed the bucket with Object Lock, and the sealer locked each checkpoint.
    s3 = pipeline.client("s3")
    (bucket,) = [b["Name"] for b in s3.list_buckets()["Buckets"] if "anchorbucket" in b["Name"]]
    assert (
        s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"][
            "ObjectLockEnabled"
        ]
        == "Enabled"
    )
    objects = [found["Key"] for found in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    bodies = [key for key in objects if "/bodies/" in key]
    anchored = [key for key in objects if key not in bodies]
    assert (len(anchored), len(bodies)) == (2, 2)  # each digest's checkpoint and its body
    for key in (anchored[-1], bodies[-1]):
        assert s3.head_object(Bucket=bucket, Key=key)["ObjectLockMode"] == "COMPLIANCE"

    # A proof of alice's record, checked offline with the exported public key.
    key_file = tmp_path / "key.pem"
    assert audit("verify", "--export-public-key", str(key_file)).exit_code == 0
    event_id = _item(pipeline, "alice@example.com")["event_key"]["S"].rsplit("#", 1)[-1]
    proof_file = tmp_path / "proof.json"
    proved = audit("prove", event_id, "--out", str(proof_file))
    assert proved.exit_code == 0, proved.stderr
    checked = audit("verify-proof", str(proof_file), "--public-key", str(key_file))
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("OK: ")
    proof = json.loads(proof_file.read_text())
    proof["record"]["canonical_content"] = proof["record"]["canonical_content"].replace(
        "deleteAccount", "somethingElse"
    )
    proof_file.write_text(json.dumps(proof))
    refuted = audit("verify-proof", str(proof_file), "--public-key", str(key_file), "--json")
    assert refuted.exit_code == 1
    assert refuted.json() == {
        "ok": False,
        "finding": "the record's canonical content does not hash to its record_hash",
    }

    # Truncation: the newest digest and its record go; the chain alone would still verify.
    dynamodb = pipeline.client("dynamodb")
    digest_table = pipeline.outputs.get("DigestTableName") or _digest_table(pipeline)
    carol = _item(pipeline, "carol@example.com")
    dynamodb.delete_item(
        TableName=pipeline.outputs["TableName"],
        Key={"subject": carol["subject"], "event_key": carol["event_key"]},
    )
    dynamodb.delete_item(
        TableName=digest_table, Key={"chain": {"S": "audit-log"}, "sequence": {"N": "2"}}
    )
    truncated = audit("verify", "--json")
    assert truncated.exit_code == 1
    details = [f["detail"] for f in truncated.json()["findings"] if f["kind"] == "anchor"]
    assert details[0].startswith("the newest anchored checkpoint (digest 2) is not in the digest")
    assert audit("verify").exit_code == 1


def _digest_table(pipeline: LocalAuditPipeline) -> str:
    tables = pipeline.client("dynamodb").list_tables()["TableNames"]
    (name,) = [t for t in tables if "DigestTable" in t]
    return str(name)


def test_verify_proof_is_offline_and_a_missing_file_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_target(*_: Any) -> None:
        raise AssertionError("verify-proof looked for a stack")

    monkeypatch.setattr(sys.modules[main.__module__], "resolve_target", no_target)
    key = tmp_path / "key.pem"
    key.write_bytes(public_key_pem(ec.generate_private_key(ec.SECP256R1()).public_key()))
    missing = tmp_path / "missing.json"
    assert main(["verify-proof", str(missing), "--public-key", str(key)]) == 2
    assert f"audit: error: {missing}: " in capsys.readouterr().err
    key.write_text("not a key")
    assert main(["verify-proof", str(missing), "--public-key", str(key)]) == 2
    assert f"audit: error: --public-key {key}: " in capsys.readouterr().err
