"""The recorder's seal notices and the sealer, on moto: chained digests, each record sealed once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_events import integrity
from audit_stack import verify as checks

from .builders import account_deleted, record_for, sqs_event
from .conftest import Sealing, emitted_metrics


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
        seal_queue_url=sealing.seal_queue_url,
        signing_key=sealing.key_arn,
        heartbeat=timedelta(hours=1),
        seconds_left=lambda: 40.0,
        now=now or (lambda: datetime.now(UTC)),
        **({"aws_client": aws_client} if aws_client else {}),
    )


def _clients_calling(*hooks: tuple[str, Callable[..., Any]]) -> Callable[[str, float], Any]:
    """AWS clients of one sealer run on which each of botocore's events (e.g.
    ``after-call.sqs.ReceiveMessage``) calls its hook: a fault or a race at one AWS call."""
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
        checks.digest_items(dynamodb, sealing.digest_table),
        checks.kms_public_key(boto3.client("kms"), sealing.key_arn),
    )


def _notices(sealing: Sealing) -> list[list[integrity.RecordRef]]:
    messages = boto3.client("sqs").receive_message(
        QueueUrl=sealing.seal_queue_url, MaxNumberOfMessages=10
    )
    return [integrity.parse_notice(m["Body"]) for m in messages.get("Messages", [])]


def _stored_hashes(sealing: Sealing) -> dict[tuple[str, str], str]:
    items = boto3.client("dynamodb").scan(TableName=sealing.table)["Items"]
    return {(i["subject"]["S"], i["event_key"]["S"]): i["record_hash"]["S"] for i in items}


# -- the recorder reports what it writes -----------------------------------------------------


def test_recorder_reports_every_record_it_writes_in_one_notice_per_batch(
    sealing: Sealing, recorder: ModuleType, lambda_context: LambdaContext
) -> None:
    assert _record(recorder, lambda_context, 3) == {"batchItemFailures": []}

    (notice,) = _notices(sealing)
    assert {ref.key: ref.record_hash for ref in notice} == _stored_hashes(sealing)


def test_a_redelivered_event_is_reported_again_with_the_stored_records_hash(
    sealing: Sealing, recorder: ModuleType, lambda_context: LambdaContext
) -> None:
    event = account_deleted()
    recorder.handler(sqs_event(record_for(event)), lambda_context)
    recorder.handler(sqs_event(record_for(event)), lambda_context)  # SQS redelivers it

    first, second = _notices(sealing)
    assert first == second  # same key, same hash, same recorded_at: the stored item's


def test_a_record_whose_notice_cannot_be_sent_is_returned_for_redelivery(
    sealing: Sealing,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = account_deleted()
    message = record_for(event, message_id="11111111-2222-4333-8444-555555555555")
    monkeypatch.setenv("SEAL_QUEUE_URL", sealing.seal_queue_url + "-gone")

    response = recorder.handler(sqs_event(message), lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    assert len(_stored_hashes(sealing)) == 1  # written, but not reported yet
    monkeypatch.setenv("SEAL_QUEUE_URL", sealing.seal_queue_url)
    assert recorder.handler(sqs_event(message), lambda_context) == {"batchItemFailures": []}
    (notice,) = _notices(sealing)
    assert [ref.key for ref in notice] == list(_stored_hashes(sealing))


# -- the sealer ------------------------------------------------------------------------------


def test_each_seal_links_to_the_one_before_and_the_chain_verifies(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    reports = []
    for count in (3, 1, 12):
        _record(recorder, lambda_context, count)
        reports.append(sealer.handler({"trigger": "schedule"}, lambda_context))

    assert [r["digests_written"] for r in reports] == [[1], [2], [3]]
    assert [r["records_sealed"] for r in reports] == [3, 1, 12]
    items = checks.digest_items(boto3.client("dynamodb"), sealing.digest_table)
    digests = [integrity.parse_digest(item["body"]["S"]) for item in items]
    assert digests[0].previous_signature is None
    assert [d.previous_signature for d in digests[1:]] == [
        item["signature"]["S"] for item in items[:-1]
    ]
    report = _verify(sealing)
    assert (report.ok, report.digests, report.sealed_records) == (True, 3, 16)


def test_records_written_while_a_seal_runs_are_sealed_exactly_once(
    sealing: Sealing,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    _record(recorder, lambda_context, 5)
    # Writes land at every step of the run: after it took notices, after it read the items
    # back, and after it wrote its digest but before it deleted the notices.
    steps = (
        "after-call.sqs.ReceiveMessage",
        "after-call.dynamodb.BatchGetItem",
        "after-call.dynamodb.PutItem",
    )
    writes_during: list[str] = []

    def write_during(step: str) -> Callable[..., None]:
        def write(**_: Any) -> None:
            # Once per step: the run would otherwise chase new writes forever.
            if step not in writes_during:
                writes_during.append(step)
                _record(recorder, lambda_context, 2)

        return write

    run = _new_sealer(
        sealer,
        sealing,
        aws_client=_clients_calling(*((step, write_during(step)) for step in steps)),
    )
    first = run.run()
    second = _new_sealer(sealer, sealing).run()

    assert writes_during == list(steps)
    written = len(_stored_hashes(sealing))
    assert first.sealed + second.sealed == written
    report = _verify(sealing)
    assert report.ok, report.findings
    assert report.sealed_records == written


def test_a_run_that_dies_before_deleting_its_notices_seals_nothing_twice(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 4)

    def die(params: dict[str, Any], **_: Any) -> None:
        # The run ends here; its notices become visible again, as after the visibility timeout.
        for entry in params["Entries"]:
            boto3.client("sqs").change_message_visibility(
                QueueUrl=sealing.seal_queue_url,
                ReceiptHandle=entry["ReceiptHandle"],
                VisibilityTimeout=0,
            )
        raise TimeoutError("Task timed out")

    dying = _new_sealer(
        sealer,
        sealing,
        aws_client=_clients_calling(("before-parameter-build.sqs.DeleteMessageBatch", die)),
    )
    with pytest.raises(TimeoutError):
        dying.run()
    retry = _new_sealer(sealer, sealing).run()

    assert (retry.digests, retry.sealed, retry.duplicates) == ([], 0, 4)
    assert _notices(sealing) == []  # consumed
    report = _verify(sealing)
    assert (report.ok, report.digests, report.sealed_records) == (True, 1, 4)


def test_two_runs_racing_for_the_next_digest_never_fork_the_chain(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 3)
    overtaken: list[int] = []

    def overtake(parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("Messages") and not overtaken:
            overtaken.append(1)
            # Another run starts, seals newer records and wins sequence 1.
            _record(recorder, lambda_context, 2)
            assert _new_sealer(sealer, sealing).run().digests == [1]

    slow = _new_sealer(
        sealer, sealing, aws_client=_clients_calling(("after-call.sqs.ReceiveMessage", overtake))
    )
    report = slow.run()

    assert overtaken  # the race happened
    assert report.digests == [2]
    verified = _verify(sealing)
    assert (verified.ok, verified.digests, verified.sealed_records) == (True, 2, 5)


def test_a_record_altered_before_it_is_sealed_is_rejected_and_counted_as_tampering(
    sealing: Sealing,
    recorder: ModuleType,
    sealer: ModuleType,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _record(recorder, lambda_context, 2)
    (subject, event_key), *_ = _stored_hashes(sealing)
    # What an administrator who lifted the table's policy could do (moto enforces no IAM).
    boto3.client("dynamodb").update_item(
        TableName=sealing.table,
        Key={"subject": {"S": subject}, "event_key": {"S": event_key}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "source"},
        ExpressionAttributeValues={":s": {"S": "forged"}},
    )
    capsys.readouterr()

    result = sealer.handler({"trigger": "schedule"}, lambda_context)

    assert result["records_sealed"] == 1
    assert [(r["subject"], r["finding"]) for r in result["rejected"]] == [
        (subject, "altered before it was sealed")
    ]
    assert emitted_metrics(capsys.readouterr().out)["TamperedAuditRecords"] == 1
    findings = {(f.kind, f.subject) for f in _verify(sealing).findings}
    assert findings == {(checks.REJECTED_AT_SEAL, subject), (checks.UNSEALED, subject)}


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


def test_the_sealers_response_names_records_by_key_only(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    result = sealer.handler({"trigger": "audit seal"}, lambda_context)
    assert "details" not in json.dumps(result)
    assert set(result) == {
        "digests_written",
        "records_sealed",
        "notices_already_sealed",
        "rejected",
        "chain_head",
    }


# -- the sealer trusts what is signed and stored, not what a notice or an attribute claims ------


def _stored_items(sealing: Sealing) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=sealing.table)["Items"]
    return items


def _send_notice(sealing: Sealing, item: dict[str, Any], recorded_at: str) -> None:
    ref = integrity.RecordRef(
        item["subject"]["S"], item["event_key"]["S"], item["record_hash"]["S"], recorded_at
    )
    boto3.client("sqs").send_message(
        QueueUrl=sealing.seal_queue_url, MessageBody=integrity.notice_body([ref])
    )


def test_a_notice_claiming_another_time_still_finds_its_record_already_sealed(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    assert _new_sealer(sealer, sealing).run().digests == [1]
    (item,) = _stored_items(sealing)
    # The same record reported again, claiming a time after the chain's head: a sealer that
    # trusted the notice's time would not search the digests and would seal it a second time.
    _send_notice(sealing, item, "2099-01-01T00:00:00.000000Z")

    rerun = _new_sealer(sealer, sealing).run()

    assert (rerun.digests, rerun.sealed, rerun.duplicates) == ([], 0, 1)
    assert _verify(sealing).ok


def test_an_edited_stored_sealed_at_does_not_cut_the_duplicate_search_short(
    sealing: Sealing, recorder: ModuleType, sealer: ModuleType, lambda_context: LambdaContext
) -> None:
    _record(recorder, lambda_context, 1)
    assert _new_sealer(sealer, sealing).run().digests == [1]
    (first,) = _stored_items(sealing)
    _record(recorder, lambda_context, 1)
    assert _new_sealer(sealer, sealing).run().digests == [2]
    # Digest 2's unsigned sealed_at attribute set back to 2000: a search that trusted it would
    # stop at digest 2 and never see that digest 1 holds the first record.
    dynamodb = boto3.client("dynamodb")
    dynamodb.update_item(
        TableName=sealing.digest_table,
        Key={"chain": {"S": integrity.DIGEST_CHAIN}, "sequence": {"N": "2"}},
        UpdateExpression="SET sealed_at = :t",
        ExpressionAttributeValues={":t": {"S": "2000-01-01T00:00:00.000000Z"}},
    )
    _send_notice(sealing, first, first["recorded_at"]["S"])

    rerun = _new_sealer(sealer, sealing).run()

    assert (rerun.digests, rerun.sealed, rerun.duplicates) == ([], 0, 1)
    findings = [(f.kind, f.digest) for f in _verify(sealing).findings]
    assert findings == [(checks.CHAIN, 2)]  # and verify names the edited attribute
