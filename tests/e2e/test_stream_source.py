"""The emulator's DynamoDB-stream event sources (esm/stream.py) on a probe stack: what Lambda
delivers from a table's stream, in which order and shape, and what it does when a batch fails."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest

from audit_stack.local import LocalAuditPipeline
from audit_stack.local.deploy.template import DeploymentError

from .probe import stream_fed_probe

pytestmark = pytest.mark.e2e


def _batches(pipeline: LocalAuditPipeline) -> list[list[dict[str, Any]]]:
    """Each invocation's records, in order of invocation."""
    return [list(found.event["Records"]) for found in pipeline.invocations("Probe")]


def _put(pipeline: LocalAuditPipeline, item_id: str, **attributes: str) -> None:
    pipeline.client("dynamodb", as_emulator=True).put_item(
        TableName=pipeline.outputs["TableName"],
        Item={"id": {"S": item_id}, **{name: {"S": value} for name, value in attributes.items()}},
    )


def test_every_write_arrives_in_order_in_lambdas_shape_in_batches_of_batch_size(
    tmp_path: Path,
) -> None:
    directory = stream_fed_probe(tmp_path / "probe.out", BatchSize=2)
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        with pipeline.stream_sources_paused():
            for item_id in ("a", "b", "c"):
                _put(pipeline, item_id)
            _put(pipeline, "a", note="changed")
            pipeline.client("dynamodb", as_emulator=True).delete_item(
                TableName=pipeline.outputs["TableName"], Key={"id": {"S": "b"}}
            )
        pipeline.run_until_idle(timeout=30)
        batches = _batches(pipeline)
        stream_arn = pipeline.outputs["StreamArn"]

    assert [len(batch) for batch in batches] == [2, 2, 1]
    records = [record for batch in batches for record in batch]
    assert [(r["eventName"], r["dynamodb"]["Keys"]["id"]["S"]) for r in records] == [
        ("INSERT", "a"),
        ("INSERT", "b"),
        ("INSERT", "c"),
        ("MODIFY", "a"),
        ("REMOVE", "b"),
    ]
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert numbers == sorted(numbers) and len(set(numbers)) == 5
    for record in records:
        assert (record["eventSource"], record["eventVersion"]) == ("aws:dynamodb", "1.1")
        assert record["eventSourceARN"] == stream_arn
        assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
        assert "userIdentity" not in record  # a caller's writes, the delete included
    modify, remove = records[3]["dynamodb"], records[4]["dynamodb"]
    assert modify["OldImage"] == {"id": {"S": "a"}}
    assert modify["NewImage"] == {"id": {"S": "a"}, "note": {"S": "changed"}}
    assert "NewImage" not in remove and remove["OldImage"] == {"id": {"S": "b"}}


def test_the_batching_window_holds_records_until_run_until_idle_fast_forwards_it(
    tmp_path: Path,
) -> None:
    directory = stream_fed_probe(tmp_path / "probe.out", MaximumBatchingWindowInSeconds=300)
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        _put(pipeline, "a")
        _put(pipeline, "b")
        time.sleep(1.0)
        assert pipeline.invocations("Probe") == []  # the window is 300 s
        started = time.monotonic()
        pipeline.run_until_idle(timeout=30)
        took = time.monotonic() - started
        batches = _batches(pipeline)

    assert [len(batch) for batch in batches] == [2]  # one batch at the window's end
    assert took < 30


def test_a_failing_batch_is_retried_whole_in_order_then_skipped_after_its_retries(
    tmp_path: Path,
) -> None:
    directory = stream_fed_probe(tmp_path / "probe.out", MaximumRetryAttempts=2, BatchSize=10)
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        with pipeline.stream_sources_paused():
            _put(pipeline, "a")
            _put(pipeline, "b", fail="raise")
        pipeline.run_until_idle(timeout=30)
        _put(pipeline, "c")
        pipeline.run_until_idle(timeout=30)
        batches = _batches(pipeline)

    keys = [[r["dynamodb"]["Keys"]["id"]["S"] for r in batch] for batch in batches]
    # The first try and its two retries, the same records each time; then the next record.
    assert keys == [["a", "b"], ["a", "b"], ["a", "b"], ["c"]]


def test_without_a_retry_limit_a_failing_batch_blocks_the_stream_and_is_never_skipped(
    tmp_path: Path,
) -> None:
    directory = stream_fed_probe(tmp_path / "probe.out")
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        _put(pipeline, "a", fail="raise")
        _put(pipeline, "b")
        with pytest.raises(TimeoutError, match=r"being processed|not yet delivered"):
            pipeline.run_until_idle(timeout=3)
        batches = _batches(pipeline)

    assert len(batches) >= 2
    assert all(batch[0]["dynamodb"]["Keys"]["id"]["S"] == "a" for batch in batches)


def test_reported_item_failures_resume_the_stream_at_the_first_failed_record(
    tmp_path: Path,
) -> None:
    directory = stream_fed_probe(
        tmp_path / "probe.out",
        FunctionResponseTypes=["ReportBatchItemFailures"],
        MaximumRetryAttempts=1,
    )
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        with pipeline.stream_sources_paused():
            _put(pipeline, "a")
            _put(pipeline, "b", fail="report")
            _put(pipeline, "c")
        pipeline.run_until_idle(timeout=30)
        batches = _batches(pipeline)

    keys = [[r["dynamodb"]["Keys"]["id"]["S"] for r in batch] for batch in batches]
    # "a" succeeded and is not sent again; the retry starts at "b".
    assert keys == [["a", "b", "c"], ["b", "c"]]


def test_a_ttl_deletion_carries_dynamodbs_identity_and_a_callers_does_not(
    tmp_path: Path,
) -> None:
    directory = stream_fed_probe(
        tmp_path / "probe.out",
        table={
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        },
    )
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        dynamodb = pipeline.client("dynamodb", as_emulator=True)
        table = pipeline.outputs["TableName"]
        for item_id in ("old", "mine"):
            dynamodb.put_item(
                TableName=table, Item={"id": {"S": item_id}, "expires_at": {"N": "1000"}}
            )
        dynamodb.delete_item(TableName=table, Key={"id": {"S": "mine"}})
        assert pipeline.expire_records() == 1
        pipeline.run_until_idle(timeout=30)
        records = [record for batch in _batches(pipeline) for record in batch]

    removes = {
        r["dynamodb"]["Keys"]["id"]["S"]: r.get("userIdentity")
        for r in records
        if r["eventName"] == "REMOVE"
    }
    assert removes == {
        "mine": None,
        "old": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
    }


def test_a_transaction_whose_condition_fails_writes_nothing_and_streams_nothing(
    tmp_path: Path,
) -> None:
    directory = stream_fed_probe(tmp_path / "probe.out")
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        _put(pipeline, "a")
        pipeline.run_until_idle(timeout=30)
        dynamodb = pipeline.client("dynamodb", as_emulator=True)
        table = pipeline.outputs["TableName"]
        with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": table, "Item": {"id": {"S": "new"}}}},
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {"id": {"S": "a"}},
                            "ConditionExpression": "attribute_not_exists(id)",
                        }
                    },
                ]
            )
        _put(pipeline, "after")
        pipeline.run_until_idle(timeout=30)
        records = [record for batch in _batches(pipeline) for record in batch]

    assert [r["dynamodb"]["Keys"]["id"]["S"] for r in records] == ["a", "after"]


def test_a_paused_stream_source_keeps_its_records_until_resumed_without_blocking_idleness(
    tmp_path: Path,
) -> None:
    directory = stream_fed_probe(tmp_path / "probe.out")
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        with pipeline.stream_sources_paused():
            _put(pipeline, "a")
            pipeline.run_until_idle(timeout=5)  # paused records are not pending work
            assert pipeline.invocations("Probe") == []
        pipeline.run_until_idle(timeout=30)
        assert [len(batch) for batch in _batches(pipeline)] == [1]


def test_a_mapping_lambda_would_refuse_is_refused_with_every_problem_named(
    tmp_path: Path,
) -> None:
    directory = stream_fed_probe(
        tmp_path / "probe.out",
        BatchSize=20_000,
        MaximumBatchingWindowInSeconds=301,
        StartingPosition="AT_TIMESTAMP",
    )
    with pytest.raises(DeploymentError) as refused:
        LocalAuditPipeline(directory, "ProbeStack").start()
    message = str(refused.value)
    for problem in (
        "BatchSize 20000 is not between 1 and 10000",
        "MaximumBatchingWindowInSeconds 301 is not between 0 and 300",
        "StartingPosition AT_TIMESTAMP must be TRIM_HORIZON or LATEST",
    ):
        assert problem in message


def test_a_property_the_emulator_does_not_reproduce_is_refused_not_ignored(
    tmp_path: Path,
) -> None:
    directory = stream_fed_probe(tmp_path / "probe.out", BisectBatchOnFunctionError=True)
    with pytest.raises(DeploymentError, match="BisectBatchOnFunctionError"):
        LocalAuditPipeline(directory, "ProbeStack").start()


def test_pauses_nest_so_an_inner_pause_does_not_resume_an_outer_one(tmp_path: Path) -> None:
    directory = stream_fed_probe(tmp_path / "probe.out")
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        with pipeline.stream_sources_paused():
            with pipeline.event_sources_paused():
                _put(pipeline, "a")
            pipeline.run_until_idle(timeout=5)
            assert pipeline.invocations("Probe") == []  # still held by the outer pause
        pipeline.run_until_idle(timeout=30)
        assert [len(batch) for batch in _batches(pipeline)] == [1]


_STREAM_READ = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")


def _stream_reader(directory: Path, *actions: str, list_streams: bool = True) -> Path:
    """The probe fed by the stream, as a role of the template allowed ``actions`` on the stream
    (and ``dynamodb:ListStreams`` on "*" with ``list_streams``), as grantStreamRead grants."""
    statements: list[dict[str, Any]] = []
    if actions:
        statements.append(
            {
                "Effect": "Allow",
                "Action": list(actions),
                "Resource": {"Fn::GetAtt": ["Table", "StreamArn"]},
            }
        )
    if list_streams:
        statements.append({"Effect": "Allow", "Action": "dynamodb:ListStreams", "Resource": "*"})
    more: dict[str, Any] = {"ReaderRole": {"Type": "AWS::IAM::Role", "Properties": {}}}
    if statements:
        more["ReaderPolicy"] = {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "read-stream",
                "Roles": [{"Ref": "ReaderRole"}],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            },
        }
    return stream_fed_probe(
        directory, function={"Role": {"Fn::GetAtt": ["ReaderRole", "Arn"]}}, more=more
    )


@pytest.mark.parametrize(
    ("actions", "list_streams"),
    [
        ((), False),
        (_STREAM_READ[:2], True),  # no GetShardIterator
        (_STREAM_READ, False),  # no ListStreams
    ],
    ids=["nothing", "no-GetShardIterator", "no-ListStreams"],
)
def test_a_role_that_may_not_read_the_stream_invokes_nothing_and_says_why(
    tmp_path: Path, actions: tuple[str, ...], list_streams: bool
) -> None:
    """Lambda reads a stream with the function's execution role
    (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#events-dynamodb-permissions):
    without every one of the four actions, records wait in the stream and nothing is invoked."""
    output = io.StringIO()
    with LocalAuditPipeline(
        _stream_reader(tmp_path, *actions, list_streams=list_streams),
        "ProbeStack",
        verbose=True,
        output=output,
    ) as pipeline:
        _put(pipeline, "a")
        time.sleep(2)
        assert pipeline.invocations("Probe") == []
    problems = [line for line in output.getvalue().splitlines() if "PROBLEM:" in line]
    assert len(problems) == 1, problems  # said once, not at every retry
    assert "is not authorized to perform: dynamodb:" in problems[0]


def test_a_role_granted_stream_read_is_delivered_the_records(tmp_path: Path) -> None:
    with LocalAuditPipeline(_stream_reader(tmp_path, *_STREAM_READ), "ProbeStack") as pipeline:
        _put(pipeline, "a")
        pipeline.run_until_idle()
        assert [r["dynamodb"]["Keys"]["id"]["S"] for b in _batches(pipeline) for r in b] == ["a"]


def test_records_older_than_24_hours_by_the_emulators_clock_are_trimmed_unread(
    tmp_path: Path,
) -> None:
    """ "All data in DynamoDB Streams is subject to a 24-hour lifetime": a record the mapping had
    not read 24 hours after it was written is gone (the emulator's clock, moved by
    advance_time); one written after the jump is delivered."""
    output = io.StringIO()
    with LocalAuditPipeline(
        stream_fed_probe(tmp_path), "ProbeStack", verbose=True, output=output
    ) as pipeline:
        with pipeline.stream_sources_paused():
            _put(pipeline, "old")
            pipeline.advance_time(23 * 3600)
            _put(pipeline, "recent")  # 23 hours younger than "old"
            pipeline.advance_time(2 * 3600)  # "old" is 25 hours old, "recent" 2
        pipeline.run_until_idle()
        delivered = [r["dynamodb"]["Keys"]["id"]["S"] for b in _batches(pipeline) for r in b]
        assert delivered == ["recent"]
    assert "1 record(s) trimmed unread, older than 24 hours" in output.getvalue()
