"""The sealer fed by the audit table's stream, on moto: chained digests, each record sealed once,
and every change to the table but the recorder's writes and TTL's deletions found as tampering."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events import contract, integrity, redaction
from audit_stack import verify as checks

from .builders import account_deleted, record_for, sqs_event
from .conftest import Sealing, emitted_metrics

BREAK_GLASS = "arn:aws:iam::123456789012:role/BreakGlass"
# What DynamoDB's stream records name as the one who deleted an item by Time to Live.
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def _record(recorder: ModuleType, context: LambdaContext, count: int) -> dict[str, Any]:
    events = [account_deleted(f"user{index}@example.com") for index in range(count)]
    response: dict[str, Any] = recorder.handler(
        sqs_event(*(record_for(event) for event in events)), context
    )
    return response


def _new_sealer(
    sealer: ModuleType,
    sealing: Sealing,
    now: Callable[[], datetime] | None = None,
    aws_client: Callable[[str, float], Any] | None = None,
) -> Any:
    return sealer.Sealer(
        table=sealing.table,
        digest_table=sealing.digest_table,
        signing_key=sealing.key_arn,
        heartbeat=timedelta(hours=1),
        seconds_left=lambda: 40.0,
        now=now or (lambda: datetime.now(UTC)),
        **({"aws_client": aws_client} if aws_client else {}),
    )


def _clients_calling(*hooks: tuple[str, Callable[..., Any]]) -> Callable[[str, float], Any]:
    """AWS clients of one sealer run on which each of botocore's events (e.g.
    ``after-call.dynamodb.Query``) calls its hook: a fault or a race at one AWS call."""
    made: dict[str, Any] = {}

    def aws_client(service: str, seconds_left: float) -> Any:
        if service not in made:
            made[service] = boto3.client(service)
            for event, hook in hooks:
                made[service].meta.events.register(event, hook)
        return made[service]

    return aws_client


def _verify(sealing: Sealing) -> checks.VerifyReport:
    dynamodb = boto3.client("dynamodb")
    return checks.verify_log(
        checks.scan_records(dynamodb, sealing.table),
        checks.digest_items(dynamodb, sealing.digest_table, boto3.client("s3")),
        checks.kms_public_key(boto3.client("kms"), sealing.key_arn),
    )


def _stored_hashes(sealing: Sealing) -> dict[tuple[str, str], str]:
    items = boto3.client("dynamodb").scan(TableName=sealing.table)["Items"]
    return {(i["subject"]["S"], i["event_key"]["S"]): i["record_hash"]["S"] for i in items}


def _stored_items(sealing: Sealing) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=sealing.table)["Items"]
    return items


def _key(item: dict[str, Any]) -> dict[str, Any]:
    return {"subject": item["subject"], "event_key": item["event_key"]}


# -- the sealer ------------------------------------------------------------------------------


def test_each_seal_links_to_the_one_before_and_the_chain_verifies(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    reports = []
    for count in (3, 1, 12):
        _record(recorder, lambda_context, count)
        reports.append(sealing.seal(sealer, lambda_context))

    assert [r["digests_written"] for r in reports] == [[1], [2], [3]]
    assert [r["records_sealed"] for r in reports] == [3, 1, 12]
    items = checks.digest_items(boto3.client("dynamodb"), sealing.digest_table, boto3.client("s3"))
    digests = [integrity.parse_digest(item["body"]["S"]) for item in items]
    assert digests[0].previous_signature is None
    assert [d.previous_signature for d in digests[1:]] == [
        item["signature"]["S"] for item in items[:-1]
    ]
    sealed = {ref.key: ref.record_hash for d in digests for ref in d.records}
    assert sealed == _stored_hashes(sealing)
    report = _verify(sealing)
    assert (report.ok, report.digests, report.sealed_records) == (True, 3, 16)


def test_a_batch_retried_after_its_run_died_past_the_digest_write_seals_nothing_twice(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 4)
    batch = sealing.stream.records()
    digest_written: list[int] = []

    def die(**_: Any) -> None:
        # The digest is in the table; the run ends before the invocation succeeds, so the event
        # source delivers the same batch again.
        digest_written.append(1)
        raise TimeoutError("Task timed out")

    dying = _new_sealer(
        sealer, sealing, aws_client=_clients_calling(("after-call.dynamodb.PutItem", die))
    )
    with pytest.raises(TimeoutError):
        dying.seal_stream(batch)
    retry = _new_sealer(sealer, sealing).seal_stream(batch)

    assert digest_written == [1]
    assert (retry.digests, retry.sealed, retry.duplicates) == ([], 0, 4)
    report = _verify(sealing)
    assert (report.ok, report.digests, report.sealed_records) == (True, 1, 4)


def test_a_batch_delivered_twice_is_reported_as_already_sealed_by_the_handler(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 3)
    event = sealing.stream.event()

    first = sealer.handler(event, lambda_context)
    again = sealer.handler(event, lambda_context)

    assert (first["records_sealed"], first["already_sealed"]) == (3, 0)
    assert (again["digests_written"], again["records_sealed"], again["already_sealed"]) == (
        [],
        0,
        3,
    )
    assert _verify(sealing).sealed_records == 3


def test_two_runs_racing_for_the_next_digest_never_fork_the_chain(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 3)
    slow_batch = sealing.stream.records()
    overtaken: list[int] = []

    def overtake(**_: Any) -> None:
        if not overtaken:
            overtaken.append(1)
            # Records written while the slow run works come in the next batch; another run
            # seals that batch and wins sequence 1.
            _record(recorder, lambda_context, 2)
            assert _new_sealer(sealer, sealing).seal_stream(sealing.stream.records()).digests == [1]

    slow = _new_sealer(
        sealer, sealing, aws_client=_clients_calling(("after-call.dynamodb.Query", overtake))
    )
    report = slow.seal_stream(slow_batch)

    assert overtaken  # the race happened
    assert (report.digests, report.sealed) == ([2], 3)
    verified = _verify(sealing)
    assert (verified.ok, verified.digests, verified.sealed_records) == (True, 2, 5)
    assert verified.sealed_records == len(_stored_hashes(sealing))


def test_a_record_altered_after_it_was_written_is_a_finding_counted_as_tampering(
    sealing: Sealing,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _record(recorder, lambda_context, 2)
    (subject, event_key), *_ = _stored_hashes(sealing)
    # What an administrator who lifted the table's policy could do (moto enforces no IAM): the
    # stream shows it as a MODIFY after the recorder's INSERT.
    boto3.client("dynamodb").update_item(
        TableName=sealing.table,
        Key={"subject": {"S": subject}, "event_key": {"S": event_key}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "source"},
        ExpressionAttributeValues={":s": {"S": "forged"}},
    )
    capsys.readouterr()

    result = sealing.seal(sealer, lambda_context)

    # Both records are sealed as the recorder wrote them (the INSERT images)...
    assert result["records_sealed"] == 2
    assert [(r["subject"], r["event_key"], r["finding"]) for r in result["rejected"]] == [
        (subject, event_key, "altered after it was written")
    ]
    assert emitted_metrics(capsys.readouterr().out)["TamperedAuditRecords"] == 1
    # ...so verify finds the stored one no longer matches what was sealed, besides the finding.
    findings = {(f.kind, f.subject) for f in _verify(sealing).findings}
    assert (checks.REJECTED_AT_SEAL, subject) in findings
    assert findings == {(checks.REJECTED_AT_SEAL, subject), (checks.MODIFIED, subject)}


def test_an_idle_log_gets_an_empty_digest_once_an_hour(
    sealing: Sealing, sealer: ModuleType
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    at: list[datetime] = [start]

    def run() -> Any:
        return _new_sealer(sealer, sealing, now=lambda: at[0]).run()

    assert run().digests == [1]  # the chain starts
    at[0] = start + timedelta(minutes=59)
    assert run().digests == []
    at[0] = start + timedelta(minutes=61)
    assert run().digests == [2]
    assert _verify(sealing).ok


def test_a_scheduled_run_seals_no_records_and_an_on_demand_one_writes_a_digest_at_once(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    assert sealer.handler({"trigger": "schedule"}, lambda_context)["digests_written"] == [1]
    _record(recorder, lambda_context, 2)

    scheduled = sealer.handler({"trigger": "schedule"}, lambda_context)
    on_demand = sealer.handler({"trigger": contract.SEAL_ON_DEMAND}, lambda_context)

    assert (scheduled["digests_written"], scheduled["records_sealed"]) == ([], 0)
    assert (on_demand["digests_written"], on_demand["records_sealed"]) == ([2], 0)
    # The records come with the stream, not with the schedule.
    assert sealing.seal(sealer, lambda_context)["records_sealed"] == 2


def test_the_sealers_response_names_records_by_key_only(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    (item,) = _stored_items(sealing)
    boto3.client("dynamodb").delete_item(TableName=sealing.table, Key=_key(item))

    result = sealing.seal(sealer, lambda_context)

    assert [r["finding"] for r in result["rejected"]] == ["deleted"]
    assert "details" not in json.dumps(result)
    assert (
        set(result)
        == {
            contract.SEAL_DIGESTS_WRITTEN,
            contract.SEAL_RECORDS_SEALED,
            contract.SEAL_ALREADY_SEALED,
            contract.SEAL_REJECTED,
            contract.SEAL_CHAIN_HEAD,
        }
        == {"digests_written", "records_sealed", "already_sealed", "rejected", "chain_head"}
    )


# -- the sealer trusts what is signed and stored, not an unsigned attribute ------------------


def test_an_edited_stored_sealed_at_does_not_cut_the_duplicate_search_short(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    first_batch = sealing.stream.records()
    assert _new_sealer(sealer, sealing).seal_stream(first_batch).digests == [1]
    _record(recorder, lambda_context, 1)
    assert sealing.seal(sealer, lambda_context)["digests_written"] == [2]
    # Digest 2's unsigned sealed_at attribute set back to 2000: a search that trusted it would
    # stop at digest 2 and never see that digest 1 holds the first record.
    dynamodb = boto3.client("dynamodb")
    dynamodb.update_item(
        TableName=sealing.digest_table,
        Key={"chain": {"S": integrity.DIGEST_CHAIN}, "sequence": {"N": "2"}},
        UpdateExpression="SET sealed_at = :t",
        ExpressionAttributeValues={":t": {"S": "2000-01-01T00:00:00.000000Z"}},
    )

    rerun = _new_sealer(sealer, sealing).seal_stream(first_batch)  # delivered again

    assert (rerun.digests, rerun.sealed, rerun.duplicates) == ([], 0, 1)
    findings = [(f.kind, f.digest) for f in _verify(sealing).findings]
    assert findings == [(checks.CHAIN, 2)]  # and verify names the edited attribute


# -- each kind of stream record (_examine) ----------------------------------------------------


def _only(records: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [r for r in records if r["eventName"] == name]
    return found


def test_an_insert_by_the_recorder_is_sealed_with_the_stored_items_times(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    (item,) = _stored_items(sealing)

    ref, finding = sealer._examine(_only(sealing.stream.records(), "INSERT"), None)

    assert finding is None
    assert ref == integrity.RecordRef(
        item["subject"]["S"],
        item["event_key"]["S"],
        item["record_hash"]["S"],
        item["recorded_at"]["S"],
        integrity.expires_at_of(item),
    )


def test_an_insert_without_a_record_hash_is_a_finding(sealing: Sealing, sealer: ModuleType) -> None:
    boto3.client("dynamodb").put_item(
        TableName=sealing.table,
        Item={"subject": {"S": "s"}, "event_key": {"S": "k"}, "source": {"S": "forged"}},
    )

    ref, finding = sealer._examine(_only(sealing.stream.records(), "INSERT"), None)

    assert ref is None
    assert finding == {
        "subject": "s",
        "event_key": "k",
        "record_hash": "",
        "finding": "written without a record_hash (not by the recorder)",
    }


def test_an_insert_whose_hash_is_not_its_contents_is_altered_before_it_was_sealed(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    (item,) = _stored_items(sealing)
    dynamodb = boto3.client("dynamodb")
    dynamodb.delete_item(TableName=sealing.table, Key=_key(item))
    sealing.stream.records()  # the recorder's write and the deletion: not this test's subject
    dynamodb.put_item(TableName=sealing.table, Item=item | {"source": {"S": "forged"}})

    ref, finding = sealer._examine(_only(sealing.stream.records(), "INSERT"), None)

    assert ref is None
    assert finding is not None
    assert (finding["record_hash"], finding["finding"]) == (
        item["record_hash"]["S"],
        "altered before it was sealed",
    )


def test_a_modify_that_changes_the_record_hash_is_a_finding(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    (item,) = _stored_items(sealing)
    sealing.stream.records()
    forged = item | {"source": {"S": "forged"}}
    # Consistent with its content: the hash no longer is the one sealed from the INSERT.
    boto3.client("dynamodb").put_item(
        TableName=sealing.table, Item=integrity.with_record_hash(forged)
    )

    ref, finding = sealer._examine(_only(sealing.stream.records(), "MODIFY"), None)

    assert ref is None
    assert finding is not None and finding["finding"] == "altered after it was written"
    assert finding["record_hash"] != item["record_hash"]["S"]


def test_a_modify_into_a_redaction_stub_keeping_the_hash_is_not_a_finding(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    (item,) = _stored_items(sealing)
    sealing.stream.records()
    stub = redaction.redaction_stub(
        item,
        redacted_at="2026-03-01T10:00:00.000000Z",
        reason="GDPR Art. 17",
        redacted_by=BREAK_GLASS,
    )
    dynamodb = boto3.client("dynamodb")
    dynamodb.put_item(TableName=sealing.table, Item=stub)
    redacted = _only(sealing.stream.records(), "MODIFY")
    # The same stub with another hash is tampering dressed up as a redaction.
    dynamodb.put_item(TableName=sealing.table, Item=stub | {"record_hash": {"S": "0" * 64}})
    rehashed = _only(sealing.stream.records(), "MODIFY")

    assert sealer._examine(redacted, None) == (None, None)
    ref, finding = sealer._examine(rehashed, None)
    assert ref is None and finding is not None
    assert finding["finding"] == "altered after it was written"


def test_an_insert_of_a_redaction_stub_is_neither_sealed_nor_a_finding(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    (item,) = _stored_items(sealing)
    sealing.stream.records()
    stub = redaction.redaction_stub(
        item,
        redacted_at="2026-03-01T10:00:00.000000Z",
        reason="GDPR Art. 17",
        redacted_by=BREAK_GLASS,
    )
    # As `audit redact --pseudonymise` writes it: under another key.
    boto3.client("dynamodb").put_item(
        TableName=sealing.table, Item=stub | {"subject": {"S": "pseudonym-1"}}
    )

    assert sealer._examine(_only(sealing.stream.records(), "INSERT"), None) == (None, None)


def test_a_deletion_by_ttl_is_not_a_finding_and_a_callers_deletion_is(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    (item,) = _stored_items(sealing)
    sealing.stream.records()
    boto3.client("dynamodb").delete_item(TableName=sealing.table, Key=_key(item))
    by_caller = _only(sealing.stream.records(), "REMOVE")
    by_ttl = by_caller | {"userIdentity": TTL_IDENTITY}

    assert sealer._examine(by_ttl, None) == (None, None)
    ref, finding = sealer._examine(by_caller, None)
    assert ref is None
    assert finding == {
        "subject": item["subject"]["S"],
        "event_key": item["event_key"]["S"],
        "record_hash": item["record_hash"]["S"],
        "finding": "deleted",
    }
    # Another service's identity is no TTL deletion.
    other = by_caller | {"userIdentity": {"type": "Service", "principalId": "example.com"}}
    assert sealer._examine(other, None)[1] == finding


def test_findings_of_a_batch_go_into_the_digest_and_its_records_are_still_sealed(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 2)
    first, _ = _stored_items(sealing)
    boto3.client("dynamodb").delete_item(TableName=sealing.table, Key=_key(first))

    result = sealing.seal(sealer, lambda_context)

    assert (result["digests_written"], result["records_sealed"]) == ([1], 2)
    (item,) = checks.digest_items(
        boto3.client("dynamodb"), sealing.digest_table, boto3.client("s3")
    )
    digest = integrity.parse_digest(item["body"]["S"])
    assert [(r["subject"], r["finding"]) for r in digest.rejected] == [
        (first["subject"]["S"], "deleted")
    ]
