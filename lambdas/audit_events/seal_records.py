"""The sealer Lambda: signs the records the recorder reported into the digest chain.

Reads TABLE_NAME, DIGEST_TABLE_NAME, SEAL_QUEUE_URL, SIGNING_KEY_ARN, HEARTBEAT_SECONDS,
ANCHOR_BUCKET_NAME, ANCHOR_RETENTION_DAYS and the Powertools variables. Runs on a schedule and on
demand (``audit seal``).

One run: read the chain's head; take the recorder's notices from the seal queue; read each
reported item back (strongly consistent) and check it still hashes to what the recorder reported;
drop records an earlier digest already sealed (a notice can be sent twice); write digest n+1 with
a conditional put, so two runs can never both write n+1 (the loser re-reads the head and tries
again); anchor its signed checkpoint in the S3 bucket under Object Lock (COMPLIANCE, an explicit
retain-until date on every object: a bucket's default retention is not relied on); only then
delete the notices. A run that dies before deleting leaves its notices to come
back, and the next run finds their records already sealed. Each record is therefore sealed once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from . import merkle
from .clients import client
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
    ENV_SEAL_QUEUE_URL,
    ENV_SIGNING_KEY_ARN,
    ENV_TABLE_NAME,
    METRIC_DIGESTS_WRITTEN,
    METRIC_RECORDS_SEALED,
    METRIC_TAMPERED_RECORDS,
    PARTITION_KEY,
    RECORD_HASH_ATTRIBUTE,
    RECORDED_AT_ATTRIBUTE,
    SEAL_CHAIN_HEAD,
    SEAL_DIGESTS_WRITTEN,
    SEAL_NOTICES_ALREADY_SEALED,
    SEAL_RECORDS_SEALED,
    SEAL_REJECTED,
    SORT_KEY,
)
from .event import format_timestamp
from .integrity import (
    DIGEST_CHAIN,
    MAX_DIGEST_BODY_BYTES,
    SIGNING_ALGORITHM,
    Digest,
    IntegrityFormatError,
    RecordRef,
    anchor_key,
    digest_item,
    expires_at_of,
    parse_digest,
    parse_notice,
    record_hash,
    record_leaf,
    record_time,
    signed_checkpoint_of,
    signed_message,
)
from .redaction import is_stub

# Time kept back at the end of a run for signing, the conditional write and the deletes.
_RESERVE_SECONDS = 10.0
# Clocks of the recorder and the sealer may differ this much at most (both are Lambda's).
_CLOCK_MARGIN = timedelta(seconds=CLOCK_MARGIN_SECONDS)
_COMMIT_ATTEMPTS = 5
_RECEIVE_BATCH = 10
_GET_BATCH = 100
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
            SEAL_NOTICES_ALREADY_SEALED: self.duplicates,
            SEAL_REJECTED: self.rejected,
            SEAL_CHAIN_HEAD: self.head,
        }


@dataclass(frozen=True)
class _Notice:
    receipt_handle: str
    records: tuple[RecordRef, ...]


@dataclass(frozen=True)
class _Stored:
    """A reported record as read back: (its record_hash attribute, its content's hash), and
    the ``recorded_at`` and ``expires_at`` it was written with."""

    hashes: tuple[str, str]
    recorded_at: str
    expires_at: int | None = None
    redacted: bool = False
    """A redaction's stub (``audit redact``): its content is gone by design; only a record
    sealed already may have one, which ``audit verify`` matches with its sealed entry."""


class Sealer:
    """One run of the sealer against one table, digest table, seal queue and signing key."""

    def __init__(
        self,
        *,
        table: str,
        digest_table: str,
        seal_queue_url: str,
        signing_key: str,
        heartbeat: timedelta,
        seconds_left: Callable[[], float],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        aws_client: Callable[[str, float], Any] = client,
        anchor_bucket: str | None = None,
        anchor_retention: timedelta = DEFAULT_ANCHOR_RETENTION,
    ) -> None:
        """``aws_client(service, seconds_left)``: a client whose retries end in time (tests
        pass clients of their own, to fail or delay one call). ``anchor_bucket``: where each
        signed checkpoint is also written, locked for ``anchor_retention`` (None: nowhere)."""
        self._anchor_bucket = anchor_bucket
        self._anchor_retention = anchor_retention
        self._aws_client = aws_client
        self._table = table
        self._digest_table = digest_table
        self._queue_url = seal_queue_url
        self._signing_key = signing_key
        self._heartbeat = heartbeat
        self._seconds_left = seconds_left
        self._now = now
        # Per digest read or written: its signed sealed_at and the keys it seals.
        self._sealed_keys: dict[int, tuple[datetime, frozenset[tuple[str, str]]]] = {}
        self._head_signature = ""
        self._trees: dict[int, merkle.Frontier] = {}

    def run(self) -> SealReport:
        report = SealReport()
        head = self._head()
        while self._seconds_left() > _RESERVE_SECONDS:
            notices = self._receive()
            if not notices:
                break
            head = self._seal(notices, head, report)
        if not report.digests and self._heartbeat_due(head):
            # An empty digest shows the sealer was alive and saw nothing: a chain whose newest
            # digest is much older than the heartbeat has stopped or lost its tail.
            head = self._commit([], [], head, report)
        report.head = head.sequence if head else 0
        return report

    # -- one batch of notices ----------------------------------------------------------------

    def _seal(
        self, notices: list[_Notice], head: Digest | None, report: SealReport
    ) -> Digest | None:
        reported: dict[tuple[str, str], RecordRef] = {}
        for notice in notices:
            for ref in notice.records:
                reported.setdefault(ref.key, ref)
        stored = self._stored_hashes(list(reported))
        candidates: list[RecordRef] = []
        rejected: list[dict[str, str]] = []
        for key, ref in reported.items():
            found = stored.get(key)
            if found is None:
                rejected.append(_finding(ref, "missing when sealed"))
            elif found.hashes != (ref.record_hash, ref.record_hash):
                rejected.append(_finding(ref, "altered before it was sealed"))
            else:
                # The stored item's times, covered by the hash just checked, not the notice's:
                # the digest signs the expiry, so verify can tell expired from removed.
                candidates.append(
                    RecordRef(
                        ref.subject,
                        ref.event_key,
                        ref.record_hash,
                        found.recorded_at,
                        found.expires_at,
                    )
                )
        fresh = self._not_yet_sealed(candidates, head, report)
        # A notice that comes again after its record was redacted finds it sealed (above); a
        # stub of a record never sealed was not made by `audit redact`, which refuses those.
        stubs = {key for key, found in stored.items() if found.redacted}
        rejected.extend(
            _finding(ref, "redacted before it was sealed") for ref in fresh if ref.key in stubs
        )
        fresh = [ref for ref in fresh if ref.key not in stubs]
        if fresh or rejected:
            head = self._commit(fresh, rejected, head, report)
        self._delete(notices)
        return head

    def _commit(
        self,
        records: list[RecordRef],
        rejected: list[dict[str, str]],
        head: Digest | None,
        report: SealReport,
    ) -> Digest | None:
        """Write the next digest(s) and return the new head; a lost race re-reads the head."""
        for chunk in list(_chunks(records)) or [[]]:
            for attempt in range(_COMMIT_ATTEMPTS):
                if attempt:
                    head = self._head()  # another run wrote this sequence number first
                    chunk = self._not_yet_sealed(chunk, head, report)
                    if not chunk and not rejected:
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
                raise RuntimeError("the digest chain kept moving; notices stay for the next run")
        return head

    def _put(self, digest: Digest) -> bool:
        """Sign and conditionally write ``digest``, then anchor its checkpoint; False if its
        sequence number is taken."""
        signature: bytes = self._client("kms").sign(
            KeyId=self._signing_key,
            Message=signed_message(digest),
            MessageType="RAW",
            SigningAlgorithm=SIGNING_ALGORITHM,
        )["Signature"]
        item = digest_item(digest, signature)
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
        self._client("s3").put_object(
            Bucket=self._anchor_bucket,
            Key=anchor_key(checkpoint.table, checkpoint.sequence),
            Body=signed.document(),
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
                for ref in parse_digest(item[DIGEST_BODY_ATTRIBUTE]["S"]).sealed_order():
                    tree.append(record_leaf(ref.record_hash))
            if "LastEvaluatedKey" not in page:
                return tree
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _not_yet_sealed(
        self, refs: list[RecordRef], head: Digest | None, report: SealReport
    ) -> list[RecordRef]:
        """Drop records that a digest already covers (their notice came a second time)."""
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
        return parse_digest(items[0][DIGEST_BODY_ATTRIBUTE]["S"])

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
                    digest = parse_digest(item[DIGEST_BODY_ATTRIBUTE]["S"])
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

    def _receive(self) -> list[_Notice]:
        notices: list[_Notice] = []
        size = 0
        # Invisible to other runs until this one has finished (or died).
        visibility = int(self._seconds_left()) + 30
        while size < MAX_DIGEST_BODY_BYTES and self._seconds_left() > _RESERVE_SECONDS:
            messages = (
                self._client("sqs")
                .receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=_RECEIVE_BATCH,
                    VisibilityTimeout=visibility,
                    WaitTimeSeconds=1,
                )
                .get("Messages", [])
            )
            for message in messages:
                try:
                    records = tuple(parse_notice(message["Body"]))
                except IntegrityFormatError as error:
                    # Only the recorder may send here; leave it for the queue-age alarm.
                    logger.error(
                        "Malformed seal notice left in the queue", extra={"reason": str(error)}
                    )
                    continue
                notices.append(_Notice(message["ReceiptHandle"], records))
                size += sum(len(ref.subject) + len(ref.event_key) + 80 for ref in records)
            if len(messages) < _RECEIVE_BATCH:
                break
        return notices

    def _stored_hashes(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], _Stored]:
        """For each key found: its record_hash attribute, its content's hash and its time."""
        found: dict[tuple[str, str], _Stored] = {}
        for start in range(0, len(keys), _GET_BATCH):
            request = {
                self._table: {
                    "Keys": [
                        {PARTITION_KEY: {"S": subject}, SORT_KEY: {"S": event_key}}
                        for subject, event_key in keys[start : start + _GET_BATCH]
                    ],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(8):
                page = self._client("dynamodb").batch_get_item(RequestItems=request)
                for item in page["Responses"].get(self._table, []):
                    key = (item[PARTITION_KEY]["S"], item[SORT_KEY]["S"])
                    stated = item.get(RECORD_HASH_ATTRIBUTE, {}).get("S", "")
                    redacted = is_stub(item)
                    found[key] = _Stored(
                        # A stub's content no longer hashes to its (kept) sealed hash.
                        (stated, stated if redacted else record_hash(item)),
                        item.get(RECORDED_AT_ATTRIBUTE, {}).get("S", ""),
                        expires_at_of(item),
                        redacted,
                    )
                request = page.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError("DynamoDB kept items unprocessed; notices stay for the next run")
        return found

    def _delete(self, notices: list[_Notice]) -> None:
        for start in range(0, len(notices), _RECEIVE_BATCH):
            entries = [
                {"Id": str(index), "ReceiptHandle": notice.receipt_handle}
                for index, notice in enumerate(notices[start : start + _RECEIVE_BATCH])
            ]
            failed = (
                self._client("sqs")
                .delete_message_batch(QueueUrl=self._queue_url, Entries=entries)
                .get("Failed", [])
            )
            if failed:
                # Harmless: the notices come back and their records are found already sealed.
                logger.warning("Seal notices not deleted", extra={"failed": len(failed)})

    def _heartbeat_due(self, head: Digest | None) -> bool:
        return head is None or record_time(head.sealed_at) + self._heartbeat <= self._now()


def _finding(ref: RecordRef, finding: str) -> dict[str, str]:
    return {
        "subject": ref.subject,
        "event_key": ref.event_key,
        "record_hash": ref.record_hash,
        "finding": finding,
    }


def _chunks(records: list[RecordRef]) -> Iterable[list[RecordRef]]:
    chunk: list[RecordRef] = []
    size = 0
    for ref in sorted(records, key=lambda ref: ref.key):
        # 80: the hash, quotes and commas; 12: an expires_at (10 digits) and its comma.
        entry = len(ref.subject.encode()) + len(ref.event_key.encode()) + 92
        if chunk and size + entry > MAX_DIGEST_BODY_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(ref)
        size += entry
    if chunk:
        yield chunk


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Seal what the recorder reported since the last run; returns the run's report."""
    report = Sealer(
        table=os.environ[ENV_TABLE_NAME],
        digest_table=os.environ[ENV_DIGEST_TABLE_NAME],
        seal_queue_url=os.environ[ENV_SEAL_QUEUE_URL],
        signing_key=os.environ[ENV_SIGNING_KEY_ARN],
        heartbeat=timedelta(seconds=int(os.environ.get(ENV_HEARTBEAT_SECONDS, "3600"))),
        seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
        anchor_bucket=os.environ.get(ENV_ANCHOR_BUCKET) or None,
        anchor_retention=timedelta(
            days=int(os.environ.get(ENV_ANCHOR_RETENTION_DAYS) or DEFAULT_ANCHOR_RETENTION.days)
        ),
    ).run()
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
