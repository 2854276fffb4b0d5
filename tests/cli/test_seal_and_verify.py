"""`audit seal` and `audit verify` on the emulator: a sealed log checks out; tampering is named.

The emulator enforces no IAM, which is exactly the position of an administrator who lifted the
table's resource policy: the raw DynamoDB calls below are what such a person could do.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from audit_stack.cli.verify import utc_now
from audit_stack.local import LocalAuditPipeline
from tests.e2e.helpers import subject_of

from .conftest import Audit


def _items(pipeline: LocalAuditPipeline) -> list[dict[str, Any]]:
    table = pipeline.outputs["TableName"]
    items: list[dict[str, Any]] = pipeline.client("dynamodb").scan(TableName=table)["Items"]
    return items


def _by_email(pipeline: LocalAuditPipeline, email: str) -> dict[str, Any]:
    subject = subject_of(pipeline, email)  # the account's pseudonym
    (item,) = [i for i in _items(pipeline) if i["subject"]["S"] == subject]
    return item


def _record(audit: Audit, pipeline: LocalAuditPipeline, *emails: str) -> None:
    for email in emails:
        assert audit("delete-account", email).exit_code == 0
    pipeline.run_until_idle(timeout=60)


def test_an_empty_log_has_nothing_sealed_yet_and_says_so(audit: Audit) -> None:
    run = audit("verify")
    assert run.exit_code == 0
    assert run.stdout.startswith("Nothing sealed yet: the chain has no digest.")
    assert run.stderr == ""


def test_seal_then_verify_then_tamper_then_verify_names_every_change(
    audit: Audit, pipeline: LocalAuditPipeline, tmp_path: Path
) -> None:
    # Written while the table's stream waits: recorded, not sealed yet.
    with pipeline.stream_sources_paused():
        _record(audit, pipeline, "alice@example.com", "bob@example.com")
        unsealed = audit("verify")
        assert unsealed.exit_code == 0, unsealed.stdout  # within the seal window: not a failure
        assert "2 record(s) wait to be sealed" in unsealed.stdout
        assert "2 record(s) not yet sealed, recorded less than 10 min ago" in unsealed.stdout
    # The stream delivers both to the sealer (the batching window fast-forwarded): one digest.
    pipeline.run_until_idle(timeout=60)
    assert audit("verify").exit_code == 0

    first = audit("seal")  # on demand: a digest now, with nothing new to seal
    assert first.exit_code == 0, first.stderr
    assert first.stdout.startswith("Sealed 0 record(s) in digest(s) 2; chain head is digest 2.")

    # A record written later is pending until the stream delivers it, then sealed once; a
    # verify run while it is on its way passes and lists it (seal_interval 5 min + 5 min margin).
    with pipeline.stream_sources_paused():
        _record(audit, pipeline, "carol@example.com")
        pending = audit("verify")
        assert pending.exit_code == 0, pending.stdout
        assert "1 record(s) not yet sealed, recorded less than 10 min ago" in pending.stdout
        assert "OK: the chain is intact and every sealed record matches its digest; the " in (
            pending.stdout
        )
        # Had the stream not delivered it within the window, it would be a finding.
        later = utc_now() + timedelta(minutes=11)
        with mock.patch("audit_stack.cli.verify.utc_now", return_value=later):
            overdue = audit("verify", "--json")
        assert overdue.exit_code == 1
        assert [f["kind"] for f in overdue.json()["findings"]] == ["not in any digest"]
    pipeline.run_until_idle(timeout=60)
    intact = audit("verify", "--json")
    assert intact.exit_code == 0
    assert intact.json()["ok"] is True
    assert (intact.json()["digests"], intact.json()["sealed_records"]) == (3, 3)

    # Offline: the public key exported once verifies without KMS.
    key_file = tmp_path / "audit-signing-key.pem"
    assert audit("verify", "--export-public-key", str(key_file)).exit_code == 0
    assert key_file.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert audit("verify", "--public-key", str(key_file)).exit_code == 0

    # The table's policy denies every change to every principal: the tampering bypasses IAM.
    # (The sealer's own reports of it: tests/cli/test_stream_sealing.py; here, verify.)
    with pipeline.stream_sources_paused():
        dynamodb = pipeline.client("dynamodb", as_emulator=True)
        table = pipeline.outputs["TableName"]
        alice = _by_email(pipeline, "alice@example.com")
        bob = _by_email(pipeline, "bob@example.com")
        dynamodb.update_item(
            TableName=table,
            Key={"subject": alice["subject"], "event_key": alice["event_key"]},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "source"},
            ExpressionAttributeValues={":s": {"S": "someone-else"}},
        )
        dynamodb.delete_item(
            TableName=table, Key={"subject": bob["subject"], "event_key": bob["event_key"]}
        )
        forged = {**bob, "subject": {"S": subject_of(pipeline, "mallory@example.com")}}
        dynamodb.put_item(TableName=table, Item=forged)

        for extra in ([], ["--public-key", str(key_file)]):
            tampered = audit("verify", "--json", *extra)
            assert tampered.exit_code == 1
            findings = {(f["kind"], f["subject"]) for f in tampered.json()["findings"]}
            assert findings == {
                ("modified", alice["subject"]["S"]),
                ("missing", bob["subject"]["S"]),
                # Within the seal window an unsealed record may still be on its way (as a log's
                # maximum merge delay, RFC 9162): listed; the sealer reports the forgery when
                # the stream delivers it (test_stream_sealing.py), and past the window verify
                # does too.
                ("not yet sealed", forged["subject"]["S"]),
            }
        with mock.patch(
            "audit_stack.cli.verify.utc_now", return_value=utc_now() + timedelta(minutes=11)
        ):
            overdue = audit("verify", "--json")
        assert ("not in any digest", forged["subject"]["S"]) in {
            (f["kind"], f["subject"]) for f in overdue.json()["findings"]
        }
        table_view = audit("verify")
        assert table_view.exit_code == 1
        assert "FAILED: 2 finding(s)" in table_view.stdout
        for key in (alice["event_key"]["S"], bob["event_key"]["S"]):
            assert key in table_view.stdout


def test_verify_refuses_a_key_file_that_is_not_a_public_key(audit: Audit, tmp_path: Path) -> None:
    bad = tmp_path / "key.pem"
    bad.write_text("not a key")
    run = audit("verify", "--public-key", str(bad))
    assert run.exit_code == 2
    assert run.stderr.startswith(f"audit: error: --public-key {bad}:")
