"""The sealer Lambda: signs the records the audit table's stream delivers into the digest chain.

Reads TABLE_NAME, DIGEST_TABLE_NAME, SIGNING_KEY_ARN, HEARTBEAT_SECONDS, ANCHOR_BUCKET_NAME,
ANCHOR_RETENTION_DAYS, WRITER_KEY_SECRET_ARN and the Powertools variables. Three triggers:

- **The table's DynamoDB stream** (an event source mapping, NEW_AND_OLD_IMAGES, with a batching
  window): every write of the table, in order, with the item as written. Each new item is checked
  (its ``record_hash`` attribute must be its content's hash, and its ``writer_mac`` the writer
  key's MAC of that hash: only the recorder and the sealer may read the key) and sealed; an item
  without a valid writer MAC was put by someone else and is reported, not sealed; a change or
  deletion of
  an item by anyone but DynamoDB's TTL, and a new item whose hash does not match, are tampering:
  listed in the digest's ``rejected`` and counted in TamperedRecords (an alarm). A redaction's
  stub (``audit redact``) is not: ``audit verify`` matches it with its sealed entry.
- **The schedule**: a heartbeat, an empty digest when none was written for the heartbeat period.
- **On demand** (``audit seal``): a digest now, so that the newest checkpoint is current.

One seal: read the chain's head; drop records an earlier digest already sealed (the event source
retries a batch whose invocation failed); write the digest's body to the anchor bucket (a
write-once object under Object Lock COMPLIANCE) and digest n+1 that points to it with a
conditional put, so two runs can never both write n+1 (the loser re-reads the head and tries
again); anchor its signed checkpoint beside it. Only then does the invocation succeed and the
event source move on: each record is sealed once, and none is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from . import merkle
from .clients import client, secret_bytes
from .contract import (
    CLOCK_MARGIN_SECONDS,
    DIGEST_BODY_ATTRIBUTE,
    DIGEST_PARTITION_KEY,
    DIGEST_SIGNATURE_ATTRIBUTE,
    DIGEST_SORT_KEY,
    ENV_ANCHOR_BUCKET,
    ENV_ANCHOR_RETENTION_DAYS,
    ENV_DIGEST_TABLE_NAME,
    ENV_HEARTBEAT_SECONDS,
    ENV_SIGNING_KEY_ARN,
    ENV_TABLE_NAME,
    ENV_WRITER_KEY_SECRET_ARN,
    METRIC_DIGESTS_WRITTEN,
    METRIC_RECORDS_SEALED,
    METRIC_TAMPERED_RECORDS,
    PARTITION_KEY,
    RECORD_HASH_ATTRIBUTE,
    RECORDED_AT_ATTRIBUTE,
    SEAL_ALREADY_SEALED,
    SEAL_CHAIN_HEAD,
    SEAL_DIGESTS_WRITTEN,
    SEAL_ON_DEMAND,
    SEAL_RECORDS_SEALED,
    SEAL_REJECTED,
    SORT_KEY,
)
from .event import format_timestamp
from .integrity import (
    DIGEST_CHAIN,
    MAX_DIGEST_BODY_BYTES,
    MAX_DIGEST_OBJECT_BYTES,
    SIGNING_ALGORITHM,
    Digest,
    RecordRef,
    anchor_key,
    body_key,
    digest_body_location,
    digest_hash,
    digest_item,
    expires_at_of,
    has_writer_mac,
    parse_digest,
    record_hash,
    record_leaf,
    record_time,
    signed_checkpoint_of,
    signed_message,
)
from .redaction import is_stub

# Clocks of the recorder and the sealer may differ this much at most (both are Lambda's).
_CLOCK_MARGIN = timedelta(seconds=CLOCK_MARGIN_SECONDS)
_COMMIT_ATTEMPTS = 5
# What DynamoDB puts in a stream record's userIdentity for a deletion by Time to Live.
_TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
DEFAULT_ANCHOR_RETENTION = timedelta(days=365)

logger = Logger()
metrics = Metrics()


@dataclass
class SealReport:
    """What a run did; the function's response and `audit seal`'s output."""

    digests: list[int] = field(default_factory=list)
    sealed: int = 0
    duplicates: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)
    head: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            SEAL_DIGESTS_WRITTEN: self.digests,
            SEAL_RECORDS_SEALED: self.sealed,
            SEAL_ALREADY_SEALED: self.duplicates,
            SEAL_REJECTED: self.rejected,
            SEAL_CHAIN_HEAD: self.head,
        }


class Sealer:
    """Seals into one digest chain: one table, digest table, signing key and anchor bucket."""

    def __init__(
        self,
        *,
        table: str,
        digest_table: str,
        signing_key: str,
        heartbeat: timedelta,
        seconds_left: Callable[[], float],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        aws_client: Callable[[str, float], Any] = client,
        anchor_bucket: str | None = None,
        anchor_retention: timedelta = DEFAULT_ANCHOR_RETENTION,
        writer_key: Callable[[], bytes] | None = None,
    ) -> None:
        """``aws_client(service, seconds_left)``: a client whose retries end in time (tests
        pass clients of their own, to fail or delay one call). ``anchor_bucket``: where each
        digest's body and signed checkpoint are written, locked for ``anchor_retention`` (None:
        the body stays in the digest item and nothing is anchored). ``writer_key``: the key
        whose MAC a new item must carry to be sealed (None: no MAC is asked for)."""
        self._writer_key = writer_key
        self._anchor_bucket = anchor_bucket
        self._anchor_retention = anchor_retention
        self._aws_client = aws_client
        self._table = table
        self._digest_table = digest_table
        self._signing_key = signing_key
        self._heartbeat = heartbeat
        self._seconds_left = seconds_left
        self._now = now
        # Per digest read or written: its signed sealed_at and the keys it seals.
        self._sealed_keys: dict[int, tuple[datetime, frozenset[tuple[str, str]]]] = {}
        self._head_signature = ""
        self._trees: dict[int, merkle.Frontier] = {}

    def run(self, *, now_please: bool = False) -> SealReport:
        """A scheduled (heartbeat) or on-demand run: no records, only a digest when one is due.

        An empty digest shows the sealer was alive: a chain whose newest digest is much older
        than the heartbeat has stopped or lost its tail (``audit verify``, DigestsStopped).
        """
        report = SealReport()
        head = self._head()
        if now_please or self._heartbeat_due(head):
            head = self._commit([], [], head, report)
        report.head = head.sequence if head else 0
        return report

    def seal_stream(self, records: list[dict[str, Any]]) -> SealReport:
        """Seal one batch of the table's stream (DynamoDB's stream record shape)."""
        report = SealReport()
        candidates: dict[tuple[str, str], RecordRef] = {}
        rejected: list[dict[str, str]] = []
        key = self._writer_key() if self._writer_key is not None else None
        moved = _stubs_put(records)
        for record in records:
            sealable, finding = _examine(record, key, moved)
            if finding is not None:
                rejected.append(finding)
            if sealable is not None:
                candidates.setdefault(sealable.key, sealable)
        head = self._head()
        fresh = self._not_yet_sealed(list(candidates.values()), head, report)
        if fresh or rejected:
            head = self._commit(fresh, rejected, head, report)
        report.head = head.sequence if head else 0
        return report

    def _commit(
        self,
        records: list[RecordRef],
        rejected: list[dict[str, str]],
        head: Digest | None,
        report: SealReport,
    ) -> Digest | None:
        """Write the next digest(s) and return the new head; a lost race re-reads the head."""
        limit = MAX_DIGEST_BODY_BYTES if self._anchor_bucket is None else MAX_DIGEST_OBJECT_BYTES
        for chunk in list(_chunks(records, limit)) or [[]]:
            for attempt in range(_COMMIT_ATTEMPTS):
                if attempt:
                    head = self._head()  # another run wrote this sequence number first
                    chunk = self._not_yet_sealed(chunk, head, report)
                    if not chunk and not rejected and report.digests:
                        break
                tree = self._tree_after(head)
                for ref in sorted(chunk, key=lambda ref: ref.key):  # Digest.sealed_order
                    tree.append(record_leaf(ref.record_hash))
                digest = Digest(
                    sequence=(head.sequence if head else 0) + 1,
                    sealed_at=format_timestamp(self._now()),
                    table=self._table,
                    signing_key=self._signing_key,
                    previous_signature=self._head_signature if head else None,
                    records=tuple(chunk),
                    rejected=tuple(rejected),
                    tree_size=tree.size,
                    root_hash=tree.root().hex(),
                    frontier=tuple(node.hex() for node in tree.nodes),
                )
                if self._put(digest):
                    head = digest
                    report.digests.append(digest.sequence)
                    report.sealed += len(chunk)
                    report.rejected.extend(rejected)
                    rejected = []  # listed once, in the first digest written
                    break
            else:
                # The invocation fails: the event source retries the batch, none is skipped.
                raise RuntimeError("the digest chain kept moving; the batch is retried")
        return head

    def _put(self, digest: Digest) -> bool:
        """Sign and conditionally write ``digest`` (its body first, when it goes to the anchor
        bucket), then anchor its checkpoint; False if its sequence number is taken."""
        signature: bytes = self._client("kms").sign(
            KeyId=self._signing_key,
            Message=signed_message(digest),
            MessageType="RAW",
            SigningAlgorithm=SIGNING_ALGORITHM,
        )["Signature"]
        body_object = None
        if self._anchor_bucket is not None:
            body = digest.body()
            key = body_key(self._table, digest.sequence, digest_hash(body))
            # Written before the item that points to it: no digest ever points to nothing.
            self._write_locked(key, body.encode("utf-8"))
            body_object = f"{self._anchor_bucket}/{key}"
        item = digest_item(digest, signature, body_object=body_object)
        try:
            self._client("dynamodb").put_item(
                TableName=self._digest_table,
                Item=item,
                ConditionExpression=f"attribute_not_exists({DIGEST_PARTITION_KEY})",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        self._head_signature = item[DIGEST_SIGNATURE_ATTRIBUTE]["S"]
        self._sealed_keys[digest.sequence] = (
            record_time(digest.sealed_at),
            frozenset(ref.key for ref in digest.records),
        )
        # Anchored only once the digest table holds it: a lost race must leave no anchor. If
        # this fails the run fails (the SealerErrors alarm) and the checkpoint stays unanchored;
        # the next one anchored covers it (audit verify's consistency check).
        self._anchor(item)
        logger.info(
            "Digest written", extra={"sequence": digest.sequence, "records": len(digest.records)}
        )
        return True

    def _anchor(self, item: dict[str, Any]) -> None:
        signed = signed_checkpoint_of(item)
        if self._anchor_bucket is None or signed is None:
            return
        checkpoint = signed.checkpoint
        self._write_locked(anchor_key(checkpoint.table, checkpoint.sequence), signed.document())

    def _write_locked(self, key: str, body: bytes) -> None:
        """A new object in the anchor bucket, locked in COMPLIANCE mode until its retention ends."""
        self._client("s3").put_object(
            Bucket=self._anchor_bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ChecksumAlgorithm="SHA256",
            # Explicit on every object: a bucket's default retention may be absent or shorter.
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=self._now() + self._anchor_retention,
        )

    def _tree_after(self, head: Digest | None) -> merkle.Frontier:
        """A copy of the Merkle tree as of ``head`` (empty before the first digest)."""
        if head is None:
            return merkle.Frontier()
        if head.sequence not in self._trees:
            if head.version >= 2:
                nodes = [bytes.fromhex(node) for node in head.frontier]
                self._trees[head.sequence] = merkle.Frontier(head.tree_size, nodes)
            else:
                self._trees[head.sequence] = self._tree_from_the_start(head)
        tree = self._trees[head.sequence]
        return merkle.Frontier(tree.size, tree.nodes)

    def _tree_from_the_start(self, head: Digest) -> merkle.Frontier:
        """Once, after an upgrade from version 1 digests: the tree over every sealed record."""
        tree = merkle.Frontier()
        request: dict[str, Any] = {
            "TableName": self._digest_table,
            "KeyConditionExpression": "#c = :c AND #s <= :s",
            "ExpressionAttributeNames": {"#c": DIGEST_PARTITION_KEY, "#s": DIGEST_SORT_KEY},
            "ExpressionAttributeValues": {
                ":c": {"S": DIGEST_CHAIN},
                ":s": {"N": str(head.sequence)},
            },
            "ConsistentRead": True,
        }
        while True:
            page = self._client("dynamodb").query(**request)
            for item in page["Items"]:
                for ref in parse_digest(self._body(item)).sealed_order():
                    tree.append(record_leaf(ref.record_hash))
            if "LastEvaluatedKey" not in page:
                return tree
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _not_yet_sealed(
        self, refs: list[RecordRef], head: Digest | None, report: SealReport
    ) -> list[RecordRef]:
        """Drop records that a digest already covers (a batch delivered a second time)."""
        if head is None or not refs:
            return refs
        head_time = record_time(head.sealed_at)
        maybe_sealed = [ref for ref in refs if record_time(ref.recorded_at) <= head_time]
        if not maybe_sealed:
            return refs
        # A digest sealed before a record was written cannot hold it. (An unknown write time
        # parses as the earliest moment: every digest is searched.)
        earliest = min(record_time(ref.recorded_at) for ref in maybe_sealed)
        since = earliest - _CLOCK_MARGIN if earliest.year > 1 else earliest
        sealed = self._keys_sealed_since(since, head)
        fresh = [ref for ref in refs if ref.key not in sealed]
        report.duplicates += len(refs) - len(fresh)
        return fresh

    # -- AWS calls ---------------------------------------------------------------------------

    def _client(self, service: str) -> Any:
        # Timeouts and retries that end before the invocation does.
        return self._aws_client(service, self._seconds_left())

    def _body(self, item: dict[str, Any]) -> str:
        """A digest item's body: its own attribute, or the object it points to. (The body's
        hash is checked where it matters: ``audit verify``; the sealer wrote both.)"""
        location = digest_body_location(item)
        if location is None:
            return str(item.get(DIGEST_BODY_ATTRIBUTE, {}).get("S", ""))
        bucket, key = location
        body = self._client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return bytes(body).decode("utf-8")

    def _head(self) -> Digest | None:
        items = self._client("dynamodb").query(
            TableName=self._digest_table,
            KeyConditionExpression="#c = :c",
            ExpressionAttributeNames={"#c": DIGEST_PARTITION_KEY},
            ExpressionAttributeValues={":c": {"S": DIGEST_CHAIN}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )["Items"]
        if not items:
            return None
        self._head_signature = items[0][DIGEST_SIGNATURE_ATTRIBUTE]["S"]
        return parse_digest(self._body(items[0]))

    def _keys_sealed_since(self, since: datetime, head: Digest) -> set[tuple[str, str]]:
        keys: set[tuple[str, str]] = set()
        request: dict[str, Any] = {
            "TableName": self._digest_table,
            "KeyConditionExpression": "#c = :c AND #s <= :s",
            "ExpressionAttributeNames": {"#c": DIGEST_PARTITION_KEY, "#s": DIGEST_SORT_KEY},
            "ExpressionAttributeValues": {
                ":c": {"S": DIGEST_CHAIN},
                ":s": {"N": str(head.sequence)},
            },
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        while True:
            page = self._client("dynamodb").query(**request)
            for item in page["Items"]:
                sequence = int(item[DIGEST_SORT_KEY]["N"])
                if sequence not in self._sealed_keys:
                    # The signed body's time: the stored sealed_at attribute is not signed, and
                    # an edited one would end the search early (and seal a record twice).
                    digest = parse_digest(self._body(item))
                    self._sealed_keys[sequence] = (
                        record_time(digest.sealed_at),
                        frozenset(ref.key for ref in digest.records),
                    )
                sealed_at, sealed_keys = self._sealed_keys[sequence]
                keys |= sealed_keys
                if sealed_at < since:
                    return keys
            if "LastEvaluatedKey" not in page:
                return keys
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _heartbeat_due(self, head: Digest | None) -> bool:
        return head is None or record_time(head.sealed_at) + self._heartbeat <= self._now()


def _stubs_put(records: list[dict[str, Any]]) -> frozenset[str]:
    """The record hashes that stubs put in this batch keep: `audit redact --pseudonymise` puts a
    stub under the pseudonym and deletes the record in clear in one transaction."""
    return frozenset(
        str(image[RECORD_HASH_ATTRIBUTE].get("S", ""))
        for record in records
        if record.get("eventName") == "INSERT"
        and is_stub(image := (record.get("dynamodb") or {}).get("NewImage") or {})
        and RECORD_HASH_ATTRIBUTE in image
    )


def _examine(
    record: dict[str, Any], writer_key: bytes | None, moved: frozenset[str] = frozenset()
) -> tuple[RecordRef | None, dict[str, str] | None]:
    """One stream record: (what to seal, or None; a tampering finding, or None). ``moved``:
    the hashes of records moved under their pseudonym in the same batch (``_stubs_put``)."""
    change = record.get("dynamodb") or {}
    name = record.get("eventName")
    keys = change.get("Keys") or {}
    new = change.get("NewImage") or {}
    old = change.get("OldImage") or {}
    subject = str(keys.get(PARTITION_KEY, {}).get("S", ""))
    event_key = str(keys.get(SORT_KEY, {}).get("S", ""))

    def finding(image: dict[str, Any], what: str) -> dict[str, str]:
        stated = str(image.get(RECORD_HASH_ATTRIBUTE, {}).get("S", ""))
        return {"subject": subject, "event_key": event_key, "record_hash": stated, "finding": what}

    if name == "INSERT":
        stated = new.get(RECORD_HASH_ATTRIBUTE, {}).get("S")
        if not isinstance(stated, str):
            return None, finding(new, "written without a record_hash (not by the recorder)")
        if is_stub(new):
            # audit redact --pseudonymise moves a sealed record under its pseudonym as a stub
            # that keeps the sealed record_hash; verify matches it with its sealed entry.
            return None, None
        if record_hash(new) != stated:
            return None, finding(new, "altered before it was sealed")
        if writer_key is not None and not has_writer_mac(new, writer_key):
            return None, finding(new, "not written by the recorder (no valid writer MAC)")
        ref = RecordRef(
            subject,
            event_key,
            stated,
            str(new.get(RECORDED_AT_ATTRIBUTE, {}).get("S", "")),
            expires_at_of(new),
        )
        return ref, None
    if name == "MODIFY":
        if is_stub(new) and new.get(RECORD_HASH_ATTRIBUTE) == old.get(RECORD_HASH_ATTRIBUTE):
            return None, None  # a redaction in place: verify checks it against its entry
        return None, finding(new, "altered after it was written")
    if name == "REMOVE":
        if record.get("userIdentity") == _TTL_IDENTITY:
            return None, None  # expired under the policy (verify checks the signed expiry)
        if old.get(RECORD_HASH_ATTRIBUTE, {}).get("S") in moved:
            # Moved under its pseudonym as a stub that keeps its hash (audit redact
            # --pseudonymise), in this batch: verify checks the stub against its sealed entry.
            return None, None
        # Every other deletion is reported (a move whose two writes reach the sealer in
        # different batches too: docs/INTEGRITY.md).
        return None, finding(old, "deleted")
    return None, finding(new or old, f"an unknown stream event {name!r}")


def _writer_key(secret_arn: str | None, context: LambdaContext) -> Callable[[], bytes] | None:
    if not secret_arn:
        return None
    return lambda: secret_bytes(secret_arn, context.get_remaining_time_in_millis() / 1000)


def _chunks(records: list[RecordRef], limit: int) -> Iterable[list[RecordRef]]:
    chunk: list[RecordRef] = []
    size = 0
    for ref in sorted(records, key=lambda ref: ref.key):
        # 80: the hash, quotes and commas; 12: an expires_at (10 digits) and its comma.
        entry = len(ref.subject.encode()) + len(ref.event_key.encode()) + 92
        if chunk and size + entry > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(ref)
        size += entry
    if chunk:
        yield chunk


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Seal a batch of the table's stream; or, scheduled or on demand, a digest when due."""
    sealer = Sealer(
        table=os.environ[ENV_TABLE_NAME],
        digest_table=os.environ[ENV_DIGEST_TABLE_NAME],
        signing_key=os.environ[ENV_SIGNING_KEY_ARN],
        heartbeat=timedelta(seconds=int(os.environ.get(ENV_HEARTBEAT_SECONDS, "3600"))),
        seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
        anchor_bucket=os.environ.get(ENV_ANCHOR_BUCKET) or None,
        anchor_retention=timedelta(
            days=int(os.environ.get(ENV_ANCHOR_RETENTION_DAYS) or DEFAULT_ANCHOR_RETENTION.days)
        ),
        writer_key=_writer_key(os.environ.get(ENV_WRITER_KEY_SECRET_ARN), context),
    )
    records = event.get("Records") if isinstance(event, dict) else None
    if isinstance(records, list) and records:
        report = sealer.seal_stream(records)
    else:
        trigger = event.get("trigger") if isinstance(event, dict) else None
        report = sealer.run(now_please=trigger == SEAL_ON_DEMAND)
    metrics.add_metric(name=METRIC_RECORDS_SEALED, unit=MetricUnit.Count, value=report.sealed)
    metrics.add_metric(
        name=METRIC_TAMPERED_RECORDS, unit=MetricUnit.Count, value=len(report.rejected)
    )
    metrics.add_metric(
        name=METRIC_DIGESTS_WRITTEN, unit=MetricUnit.Count, value=len(report.digests)
    )
    if report.rejected:
        # Keys only: the finding, never the record's content.
        logger.error(
            "Records failed their check before sealing", extra={"count": len(report.rejected)}
        )
    logger.info("Seal run finished", extra=report.to_dict() | {"rejected": len(report.rejected)})
    return report.to_dict()
