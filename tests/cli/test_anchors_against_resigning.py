"""Role capture on the emulator: a sealed record rewritten and every digest re-signed with the
real signing key passes the chain's own checks, and `audit verify` still exits 1 because the
anchored checkpoints (Object Lock) say otherwise. Its own module: its own emulator."""

from __future__ import annotations

from typing import Any

from audit_events import integrity, merkle
from audit_stack import verify, discovery
from audit_stack.local import LocalAuditPipeline

from .conftest import Audit


def test_a_history_re_signed_with_the_real_key_fails_verify_against_the_anchors(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    for email in ("alice@example.com", "bob@example.com"):
        assert audit("delete-account", email).exit_code == 0
    pipeline.run_until_idle(timeout=60)
    assert audit("seal").exit_code == 0
    assert audit("delete-account", "carol@example.com").exit_code == 0
    pipeline.run_until_idle(timeout=60)
    assert audit("seal").exit_code == 0
    assert audit("verify").exit_code == 0

    dynamodb, kms = pipeline.client("dynamodb"), pipeline.client("kms")
    table = pipeline.resource_name(discovery.TABLE)
    digest_table = pipeline.resource_name(discovery.DIGEST_TABLE)
    key = pipeline.resource_name(discovery.SIGNING_KEY)
    # Each digest with its body (read from the anchor bucket, where the sealer wrote it).
    digests: list[dict[str, Any]] = verify.digest_items(
        dynamodb, digest_table, pipeline.client("s3")
    )
    victim_ref = integrity.parse_digest(digests[0]["body"]["S"]).records[0]
    victim = dynamodb.get_item(
        TableName=table,
        Key={"subject": {"S": victim_ref.subject}, "event_key": {"S": victim_ref.event_key}},
    )["Item"]
    forged = integrity.with_record_hash({**victim, "source": {"S": "someone-else"}})
    dynamodb.put_item(TableName=table, Item=forged)
    previous: str | None = None
    tree = merkle.Frontier()
    for item in digests:
        old = integrity.parse_digest(item["body"]["S"])
        refs = tuple(
            integrity.RecordRef(
                r.subject,
                r.event_key,
                forged["record_hash"]["S"] if r.key == victim_ref.key else r.record_hash,
            )
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
            KeyId=key,
            Message=integrity.signed_message(digest),
            MessageType="RAW",
            SigningAlgorithm="ECDSA_SHA_256",
        )["Signature"]
        rewritten = integrity.digest_item(digest, signature)
        dynamodb.put_item(TableName=digest_table, Item=rewritten)
        previous = rewritten["signature"]["S"]

    result = audit("verify", "--json")
    assert result.exit_code == 1
    findings = result.json()["findings"]
    # Every finding is the anchors': the chain and the records are consistent with each other.
    assert {f["kind"] for f in findings} == {"anchor"}
    details = [f["detail"] for f in findings]
    assert "digest 1 differs from its anchored checkpoint: rewritten and re-signed" in details
    assert "digest 2 differs from its anchored checkpoint: rewritten and re-signed" in details
