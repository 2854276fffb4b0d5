"""Checkpoints anchored in S3 Object Lock, on moto: each attack that passes the digest chain's
own checks is caught against the anchors (rewrite and re-sign, truncation, restart, silence)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from audit_events import integrity, merkle
from audit_stack import verify as checks

from .builders import REGION, account_deleted, record_for, sqs_event
from .conftest import Sealing

ANCHOR_BUCKET = "audit-anchors"
MAX_GAP = timedelta(hours=1, minutes=10)


@pytest.fixture
def anchors(sealing: Sealing, monkeypatch: pytest.MonkeyPatch) -> str:
    """An Object Lock bucket as the construct creates it; the sealer's environment names it."""
    boto3.client("s3").create_bucket(
        Bucket=ANCHOR_BUCKET,
        CreateBucketConfiguration={"LocationConstraint": REGION},
        ObjectLockEnabledForBucket=True,
    )
    monkeypatch.setenv("ANCHOR_BUCKET_NAME", ANCHOR_BUCKET)
    monkeypatch.setenv("ANCHOR_RETENTION_DAYS", "30")
    return ANCHOR_BUCKET


def _record(recorder: ModuleType, context: LambdaContext, *emails: str) -> None:
    events = [account_deleted(email) for email in emails]
    recorder.handler(sqs_event(*(record_for(event) for event in events)), context)


def _seal(sealer: ModuleType, sealing: Sealing, now: Callable[[], datetime] | None = None) -> Any:
    """The stream's next batch sealed, as the event source delivers it; with no new records,
    a scheduled run (a heartbeat digest when one is due)."""
    run = sealer.Sealer(
        table=sealing.table,
        digest_table=sealing.digest_table,
        signing_key=sealing.key_arn,
        heartbeat=timedelta(hours=1),
        seconds_left=lambda: 40.0,
        now=now or (lambda: datetime.now(UTC)),
        anchor_bucket=ANCHOR_BUCKET,
        anchor_retention=timedelta(days=30),
    )
    records = sealing.stream.records()
    return run.seal_stream(records) if records else run.run()


def _digests(sealing: Sealing) -> list[dict[str, Any]]:
    return checks.digest_items(boto3.client("dynamodb"), sealing.digest_table, boto3.client("s3"))


def _raw_digests(sealing: Sealing) -> list[dict[str, Any]]:
    """The digest items as the table holds them, oldest first (no body read from the bucket)."""
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=sealing.digest_table)[
        "Items"
    ]
    return sorted(items, key=lambda item: int(item["sequence"]["N"]))


def _records(sealing: Sealing) -> list[dict[str, Any]]:
    return list(checks.scan_records(boto3.client("dynamodb"), sealing.table))


def _public_key(sealing: Sealing) -> Any:
    return checks.kms_public_key(boto3.client("kms"), sealing.key_arn)


def _anchor_findings(sealing: Sealing) -> list[str]:
    anchored = checks.anchored_objects(boto3.client("s3"), ANCHOR_BUCKET, sealing.table)
    findings = checks.verify_anchors(
        _digests(sealing), anchored, _public_key(sealing), max_gap=MAX_GAP
    )
    assert all(finding.kind == checks.ANCHOR for finding in findings)
    return [finding.detail for finding in findings]


def _sealed_log(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, context: LambdaContext
) -> None:
    _record(recorder, context, "alice@example.com", "bob@example.com")
    _seal(sealer, sealing)
    _record(recorder, context, "carol@example.com")
    _seal(sealer, sealing)


def test_every_checkpoint_is_anchored_locked_in_compliance_mode_and_cannot_be_deleted(
    sealing: Sealing,
    anchors: str,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    _sealed_log(sealing, recorder, sealer, lambda_context)
    s3 = boto3.client("s3")
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=anchors)["Contents"]
        if f"/{integrity.BODIES_FOLDER}" not in o["Key"]
    ]
    assert keys == [integrity.anchor_key(sealing.table, n) for n in (1, 2)]
    head = s3.head_object(Bucket=anchors, Key=keys[-1])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=29)
    version = head["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=anchors, Key=keys[-1], VersionId=version)
    # What is anchored is exactly the table's signed checkpoint.
    anchored = s3.get_object(Bucket=anchors, Key=keys[-1])["Body"].read()
    assert integrity.parse_signed_checkpoint(anchored) == integrity.signed_checkpoint_of(
        _digests(sealing)[-1]
    )
    assert _anchor_findings(sealing) == []
    assert checks.verify_log(_records(sealing), _digests(sealing), _public_key(sealing)).ok


def test_with_an_anchor_bucket_a_digest_item_points_to_its_body_locked_in_compliance_mode(
    sealing: Sealing,
    anchors: str,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    _sealed_log(sealing, recorder, sealer, lambda_context)
    s3 = boto3.client("s3")
    for item in _raw_digests(sealing):
        assert "body" not in item
        bucket, key = integrity.digest_body_location(item) or ("", "")
        assert item["body_object"] == {"S": f"{anchors}/{key}"}
        assert bucket == anchors
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        assert integrity.digest_hash(body) == item["digest_hash"]["S"]
        assert key == integrity.body_key(
            sealing.table, int(item["sequence"]["N"]), item["digest_hash"]["S"]
        )
        assert checks.with_body(item, s3)["body"] == {"S": body}
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=29)
        with pytest.raises(ClientError, match="AccessDenied"):
            s3.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])
    assert checks.verify_log(_records(sealing), _digests(sealing), _public_key(sealing)).ok


@pytest.mark.parametrize(
    "pointer",
    [
        f"{ANCHOR_BUCKET}/checkpoints/audit-events/bodies/gone.json",  # deleted (or never written)
        "another-bucket/body.json",  # not readable by this caller
    ],
)
def test_verify_names_a_digests_body_object_it_cannot_read(
    sealing: Sealing,
    anchors: str,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
    pointer: str,
) -> None:
    _sealed_log(sealing, recorder, sealer, lambda_context)
    # A locked object cannot be deleted: the item is pointed elsewhere instead.
    boto3.client("dynamodb").update_item(
        TableName=sealing.digest_table,
        Key={"chain": {"S": integrity.DIGEST_CHAIN}, "sequence": {"N": "1"}},
        UpdateExpression="SET body_object = :o",
        ExpressionAttributeValues={":o": {"S": pointer}},
    )
    digests = _digests(sealing)
    assert "body" not in digests[0] and "body" in digests[1]

    report = checks.verify_log(_records(sealing), digests, _public_key(sealing))

    assert not report.ok
    assert [(f.kind, f.digest) for f in report.findings if f.digest == 1][:1] == [(checks.CHAIN, 1)]
    assert any(f"s3://{pointer} cannot be read" in f.detail for f in report.findings)


def _rewrite_and_resign(sealing: Sealing) -> None:
    """The attack of the issue: with the sealer's role (KMS Sign with the real key) and the
    table policy lifted, change a sealed record, then re-sign every digest from the first, same
    sequence numbers and times, so the chain is self-consistent again."""
    dynamodb, kms = boto3.client("dynamodb"), boto3.client("kms")
    first_sealed = integrity.parse_digest(_digests(sealing)[0]["body"]["S"]).records[0]
    victim = next(
        item for item in _records(sealing) if item["subject"]["S"] == first_sealed.subject
    )
    forged = integrity.with_record_hash({**victim, "source": {"S": "someone-else"}})
    dynamodb.put_item(TableName=sealing.table, Item=forged)
    new_hashes = {(victim["subject"]["S"], victim["event_key"]["S"]): forged["record_hash"]["S"]}
    previous: str | None = None
    tree = merkle.Frontier()
    for item in _digests(sealing):
        old = integrity.parse_digest(item["body"]["S"])
        refs = tuple(
            integrity.RecordRef(r.subject, r.event_key, new_hashes.get(r.key, r.record_hash))
            for r in old.sealed_order()
        )
        for ref in refs:
            tree.append(integrity.record_leaf(ref.record_hash))
        digest = integrity.Digest(
            sequence=old.sequence,
            sealed_at=old.sealed_at,
            table=old.table,
            signing_key=old.signing_key,
            previous_signature=previous,
            records=refs,
            tree_size=tree.size,
            root_hash=tree.root().hex(),
            frontier=tuple(node.hex() for node in tree.nodes),
        )
        signature = kms.sign(
            KeyId=sealing.key_arn,
            Message=integrity.signed_message(digest),
            MessageType="RAW",
            SigningAlgorithm="ECDSA_SHA_256",
        )["Signature"]
        rewritten = integrity.digest_item(digest, signature)
        dynamodb.put_item(TableName=sealing.digest_table, Item=rewritten)
        previous = rewritten["signature"]["S"]


def test_a_rewritten_history_re_signed_with_the_real_key_fails_against_the_anchors(
    sealing: Sealing,
    anchors: str,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    _sealed_log(sealing, recorder, sealer, lambda_context)
    _rewrite_and_resign(sealing)
    # The chain alone cannot tell: that is the hole the anchors close.
    assert checks.verify_log(_records(sealing), _digests(sealing), _public_key(sealing)).ok
    findings = _anchor_findings(sealing)
    assert "digest 2 differs from its anchored checkpoint: rewritten and re-signed" in findings
    assert any("do not extend anchored checkpoint 1" in finding for finding in findings)


def test_re_anchoring_the_rewritten_history_adds_a_version_and_is_named(
    sealing: Sealing,
    anchors: str,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    _sealed_log(sealing, recorder, sealer, lambda_context)
    _rewrite_and_resign(sealing)
    s3 = boto3.client("s3")
    for item in _digests(sealing):  # the sealer's grant allows PutObject on the prefix
        signed = integrity.signed_checkpoint_of(item)
        assert signed is not None
        s3.put_object(
            Bucket=anchors,
            Key=integrity.anchor_key(sealing.table, signed.checkpoint.sequence),
            Body=signed.document(),
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=30),
        )
    findings = _anchor_findings(sealing)
    key = integrity.anchor_key(sealing.table, 2)
    assert f"{key} was written 2 times with different contents" in findings
    # The oldest, locked version still decides.
    assert "digest 2 differs from its anchored checkpoint: rewritten and re-signed" in findings


def test_deleting_the_newest_digest_and_its_records_is_a_truncation(
    sealing: Sealing,
    anchors: str,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    _sealed_log(sealing, recorder, sealer, lambda_context)
    dynamodb = boto3.client("dynamodb")
    newest = _digests(sealing)[-1]
    for ref in integrity.parse_digest(newest["body"]["S"]).records:
        dynamodb.delete_item(
            TableName=sealing.table,
            Key={"subject": {"S": ref.subject}, "event_key": {"S": ref.event_key}},
        )
    dynamodb.delete_item(
        TableName=sealing.digest_table,
        Key={"chain": newest["chain"], "sequence": newest["sequence"]},
    )
    assert checks.verify_log(_records(sealing), _digests(sealing), _public_key(sealing)).ok
    findings = _anchor_findings(sealing)
    assert findings[0].startswith(
        "the newest anchored checkpoint (digest 2) is not in the digest table"
    )


def test_wiping_both_tables_is_a_restart_while_anchors_exist(
    sealing: Sealing,
    anchors: str,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    _sealed_log(sealing, recorder, sealer, lambda_context)
    dynamodb = boto3.client("dynamodb")
    for item in _records(sealing):
        dynamodb.delete_item(
            TableName=sealing.table,
            Key={"subject": item["subject"], "event_key": item["event_key"]},
        )
    for item in _digests(sealing):
        dynamodb.delete_item(
            TableName=sealing.digest_table,
            Key={"chain": item["chain"], "sequence": item["sequence"]},
        )
    assert _anchor_findings(sealing) == [
        "the digest table is empty but 2 checkpoint(s) are anchored, the newest digest 2: the "
        "log was wiped or restarted"
    ]
    # A chain restarted from scratch is not the anchored one either.
    _record(recorder, lambda_context, "dave@example.com")
    _seal(sealer, sealing)
    findings = _anchor_findings(sealing)
    assert "digest 1 differs from its anchored checkpoint: rewritten and re-signed" in findings
    assert any(f.startswith("the newest anchored checkpoint (digest 2)") for f in findings)


def test_checkpoints_further_apart_than_the_heartbeat_allows_are_a_finding(
    sealing: Sealing, anchors: str, sealer: ModuleType
) -> None:
    start = datetime.now(UTC) - timedelta(hours=4)
    at = [start]
    assert _seal(sealer, sealing, now=lambda: at[0]).digests == [1]
    at[0] = start + timedelta(hours=1, minutes=5)
    assert _seal(sealer, sealing, now=lambda: at[0]).digests == [2]
    assert _anchor_findings(sealing) == []
    at[0] = start + timedelta(hours=3, minutes=30)  # the sealer was silenced in between
    assert _seal(sealer, sealing, now=lambda: at[0]).digests == [3]
    (finding,) = _anchor_findings(sealing)
    assert finding.startswith("no checkpoint anchored between digest 2 and digest 3 for 2:25")


def test_a_log_silent_until_now_for_longer_than_the_heartbeat_allows_is_a_finding(
    sealing: Sealing, anchors: str, sealer: ModuleType
) -> None:
    """No new checkpoint since the newest (the sealer stopped, or its anchoring did): a finding
    while the silence lasts, not only once a later checkpoint shows the gap."""
    sealed_at = datetime.now(UTC) - timedelta(hours=2)
    assert _seal(sealer, sealing, now=lambda: sealed_at).digests == [1]
    anchored = checks.anchored_objects(boto3.client("s3"), ANCHOR_BUCKET, sealing.table)

    def findings(now: datetime) -> list[str]:
        return [
            finding.detail
            for finding in checks.verify_anchors(
                _digests(sealing), anchored, _public_key(sealing), max_gap=MAX_GAP, now=now
            )
        ]

    assert findings(sealed_at + timedelta(hours=1)) == []
    (silent,) = findings(sealed_at + timedelta(hours=2))
    assert silent.startswith("no checkpoint anchored since digest 1, 2:00:00 before this check")
    assert "the sealer stopped, or its checkpoints are no longer anchored" in silent


def test_a_saved_checkpoint_proves_an_honest_extension_and_refutes_a_rewrite(
    sealing: Sealing,
    anchors: str,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    _record(recorder, lambda_context, "alice@example.com", "bob@example.com")
    _seal(sealer, sealing)
    saved = checks.newest_signed_checkpoint(_digests(sealing)).document()
    _record(recorder, lambda_context, "carol@example.com")
    _seal(sealer, sealing)
    assert checks.verify_extends(saved, _digests(sealing), _public_key(sealing)) == []

    _rewrite_and_resign(sealing)
    (finding,) = checks.verify_extends(saved, _digests(sealing), _public_key(sealing))
    assert finding.detail == "the saved checkpoint's digest differs today"


def test_an_inclusion_proof_checks_out_offline_and_fails_for_a_changed_record(
    sealing: Sealing,
    anchors: str,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    _sealed_log(sealing, recorder, sealer, lambda_context)
    record = _records(sealing)[1]
    proof = checks.inclusion_proof(record, _digests(sealing))
    assert proof["tree_size"] == 3
    signed = checks.check_inclusion_proof(json.loads(json.dumps(proof)), _public_key(sealing))
    assert signed.checkpoint.sequence == 2

    changed = json.loads(json.dumps(proof))
    changed["record"]["canonical_content"] = changed["record"]["canonical_content"].replace(
        "deleteAccount", "someoneElse"
    )
    with pytest.raises(checks.ProofError, match="does not hash to its record_hash"):
        checks.check_inclusion_proof(changed, _public_key(sealing))
    rehashed = json.loads(json.dumps(proof))
    rehashed["record"]["record_hash"] = "0" * 64
    rehashed["record"]["canonical_content"] = ""
    with pytest.raises(checks.ProofError):
        checks.check_inclusion_proof(rehashed, _public_key(sealing))
    moved = json.loads(json.dumps(proof))
    moved["leaf_index"] = (proof["leaf_index"] + 1) % 3
    with pytest.raises(checks.ProofError, match="does not lead to the checkpoint's Merkle root"):
        checks.check_inclusion_proof(moved, _public_key(sealing))
    _record(recorder, lambda_context, "late@example.com")
    sealed = set(_leaves(sealing))
    late = next(
        item
        for item in _records(sealing)
        if integrity.record_leaf(item["record_hash"]["S"]) not in sealed
    )
    with pytest.raises(checks.ProofError, match="not sealed"):
        checks.inclusion_proof(late, _digests(sealing))


def _leaves(sealing: Sealing) -> list[bytes]:
    return [
        integrity.record_leaf(ref.record_hash)
        for item in _digests(sealing)
        for ref in integrity.parse_digest(item["body"]["S"]).sealed_order()
    ]


def test_a_version_1_chain_is_extended_with_a_tree_over_all_its_records(
    sealing: Sealing,
    anchors: str,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _record(recorder, lambda_context, "alice@example.com", "bob@example.com")
    with monkeypatch.context() as patch:
        patch.setattr(sealer, "Digest", _version_1_digest)
        _seal(sealer, sealing)
    assert "checkpoint" not in _digests(sealing)[0]
    _record(recorder, lambda_context, "carol@example.com")
    _seal(sealer, sealing)
    second = integrity.parse_digest(_digests(sealing)[1]["body"]["S"])
    assert (second.version, second.tree_size) == (integrity.DIGEST_VERSION, 3)
    assert second.root_hash == merkle.root_hash(_leaves(sealing)).hex()
    assert checks.verify_log(_records(sealing), _digests(sealing), _public_key(sealing)).ok


def _version_1_digest(**fields: Any) -> Any:
    return integrity.Digest(**{**fields, "version": 1})


def test_a_checkpoint_put_under_another_key_is_named_and_not_trusted(
    sealing: Sealing,
    anchors: str,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    _sealed_log(sealing, recorder, sealer, lambda_context)
    first = integrity.signed_checkpoint_of(_digests(sealing)[0])
    assert first is not None
    misplaced = integrity.anchor_key(sealing.table, 7)
    boto3.client("s3").put_object(Bucket=anchors, Key=misplaced, Body=first.document())
    assert _anchor_findings(sealing) == [
        f"{misplaced} holds checkpoint 1 of table {sealing.table!r}: not where it belongs"
    ]
