"""The benchmark's cost model: the floor from the prices, log bytes priced, the integrity chain
and its designs, and the goal verdicts. Pure arithmetic on hand-made usage: no emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from audit_stack.local import OperationCount
from bench import costs, report, solutions_venv
from bench.configurations import Configuration, CriticalPath, FunctionFacts, TemplateFacts
from bench.load import FunctionUse, SealRun, Usage

RECORDER = "Recorder"
PUBLISHER = "Publisher"
SEALER = "Sealer"
PATH = CriticalPath(concurrent_writes=10)


def _facts(*, data_protection: bool = True, log_format: str = "JSON") -> TemplateFacts:
    functions = {
        logical_id: FunctionFacts(
            logical_id, 256, "arm64", log_format, tracing=True, data_protection=data_protection
        )
        for logical_id in (RECORDER, PUBLISHER, SEALER)
    }
    return TemplateFacts(functions, 0, 10, True)


def _use(logical_id: str, invocations: int, batch: int, log_bytes: int = 0) -> FunctionUse:
    return FunctionUse(
        logical_id,
        durations_ms=[5.0] * invocations,
        cpu_ms=[2.0] * invocations,
        batch_sizes=[batch] * invocations,
        log_bytes=[log_bytes] * invocations,
        log_events=[batch] * invocations,
    )


def _seal(*, s3: dict[str, OperationCount] | None = None) -> SealRun:
    return SealRun(
        requests={
            "dynamodb:Query": OperationCount(requests=1),
            "dynamodb:PutItem": OperationCount(requests=1, item_write_units=1),
            "kms:Sign": OperationCount(requests=1),
            **(s3 or {}),
        },
        function=_use(SEALER, 1, 1000, log_bytes=500),
        records_sealed=1000,
        digests_written=1,
        payload_bytes=1000 * 1100,
    )


def _usage(seal: SealRun | None = None, recorder_log_bytes: int = 4000) -> Usage:
    """1,000 events in full batches: 100 recorder invocations, 100 seal notices."""
    return Usage(
        recorded=1000,
        requests={
            "sns:Publish": OperationCount(requests=1000, billed_requests=1000),
            "sqs:ReceiveMessage": OperationCount(requests=100, billed_requests=100),
            "sqs:DeleteMessageBatch": OperationCount(requests=100, billed_requests=100),
            "sqs:SendMessage": OperationCount(requests=100, billed_requests=100),
            "dynamodb:PutItem": OperationCount(requests=1000, item_write_units=1000),
        },
        functions={
            RECORDER: _use(RECORDER, 100, 10, log_bytes=recorder_log_bytes),
            PUBLISHER: _use(PUBLISHER, 1000, 0),
        },
        publisher=PUBLISHER,
        seal=seal,
    )


def _line(lines: list[costs.CostLine], starts: str) -> costs.CostLine:
    (found,) = [line for line in lines if line.component.startswith(starts)]
    return found


def test_floor_is_sns_publish_sqs_send_receive_and_delete_at_ten_and_one_write_unit() -> None:
    assert pytest.approx(0.50 + 0.40 + 0.08 + 0.625) == costs.FLOOR_PER_MILLION
    assert pytest.approx(1.605) == costs.FLOOR_PER_MILLION


def test_publish_batch_floor_shares_one_sns_request_among_ten_events() -> None:
    assert pytest.approx(0.05 + 0.40 + 0.08 + 0.625) == costs.FLOOR_PUBLISH_BATCH_PER_MILLION
    assert pytest.approx(1.155) == costs.FLOOR_PUBLISH_BATCH_PER_MILLION


def test_floor_follows_the_price_constants(monkeypatch: pytest.MonkeyPatch) -> None:
    doubled = costs.Price("SNS", 2 * costs.SNS_PUBLISH.usd, "request", "test")
    monkeypatch.setattr(costs, "SNS_PUBLISH", doubled)
    assert costs.floor_per_million() == pytest.approx(1.605 + 0.50)
    assert costs.floor_per_million(events_per_publish=10) == pytest.approx(1.155 + 0.05)


def test_floor_refuses_fewer_than_one_event_per_publish_or_message_per_call() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        costs.floor_lines(events_per_publish=0)
    with pytest.raises(ValueError, match="at least 1"):
        costs.floor_lines(messages_per_call=0)


def test_log_event_bytes_count_utf8_bytes_plus_the_per_event_overhead() -> None:
    assert costs.log_event_bytes(["é", "ab"]) == 2 + 2 + 2 * costs.LOG_EVENT_OVERHEAD_BYTES


def test_json_platform_lines_are_a_start_and_a_report_record_with_memory_and_trace() -> None:
    function = FunctionFacts("F", 256, "arm64", "JSON", tracing=True)
    records = [json.loads(line) for line in costs.lambda_platform_lines(function)]
    assert [record["type"] for record in records] == ["platform.start", "platform.report"]
    assert records[1]["record"]["metrics"]["memorySizeMB"] == 256
    assert "tracing" in records[1]["record"]
    untraced = FunctionFacts("F", 256, "arm64", "JSON", tracing=False)
    assert costs.platform_log_bytes(untraced) < costs.platform_log_bytes(function)


def test_json_platform_lines_at_system_log_level_warn_are_none() -> None:
    # AWS's event mapping for system log levels puts platform.start and platform.report at INFO.
    quiet = FunctionFacts("F", 256, "arm64", "JSON", system_log_level="WARN", tracing=True)
    assert costs.lambda_platform_lines(quiet) == ()
    assert costs.platform_log_bytes(quiet) == 0
    # The Text format has no levels: its START/END/REPORT lines are written whatever the level.
    text = FunctionFacts("F", 256, "arm64", "Text", system_log_level="WARN")
    assert len(costs.lambda_platform_lines(text)) == 3


def test_text_platform_lines_are_start_end_and_report_with_the_xray_trace() -> None:
    function = FunctionFacts("F", 128, "x86_64", "Text", tracing=True)
    lines = costs.lambda_platform_lines(function)
    assert [line.split(" ", 1)[0] for line in lines] == ["START", "END", "REPORT"]
    assert "Memory Size: 128 MB" in lines[2]
    assert "XRAY TraceId" in lines[2]


def test_logs_are_priced_per_byte_captured_plus_lambdas_lines_with_the_scan() -> None:
    facts = _facts()
    lines = costs.cost_per_million(_usage(), facts, PATH)
    recorder = facts.functions[RECORDER]
    ingestion = _line(lines, "CloudWatch Logs ingestion: recorder")
    captured = 100 * 4000 + 100 * 10 * costs.LOG_EVENT_OVERHEAD_BYTES
    platform = 100 * costs.platform_log_bytes(recorder)
    expected_bytes = captured + platform
    assert ingestion.units_per_event == pytest.approx(expected_bytes / 1000)
    assert ingestion.usd_per_million == pytest.approx(expected_bytes * 0.50 / 1024**3 * 1000)
    scan = _line(lines, "CloudWatch Logs data protection scan: recorder")
    assert scan.usd_per_million == pytest.approx(expected_bytes * 0.12 / 1024**3 * 1000)
    assert ingestion.audit and not _line(lines, "CloudWatch Logs ingestion: publisher").audit


def test_no_data_protection_scan_where_the_log_group_has_no_policy() -> None:
    lines = costs.cost_per_million(_usage(), _facts(data_protection=False), PATH)
    assert not [line for line in lines if "data protection" in line.component]


def test_more_log_bytes_cost_more_by_exactly_their_ingestion_and_scan_price() -> None:
    facts = _facts()
    small = costs.total(costs.cost_per_million(_usage(recorder_log_bytes=1000), facts, PATH))
    large = costs.total(costs.cost_per_million(_usage(recorder_log_bytes=2000), facts, PATH))
    extra_bytes = 100 * 1000
    assert large - small == pytest.approx(extra_bytes * (0.50 + 0.12) / 1024**3 * 1000)


def test_integrity_total_is_every_sealer_line_and_nothing_else() -> None:
    lines = costs.cost_per_million(_usage(_seal()), _facts(), PATH)
    integrity = [line for line in lines if line.integrity]
    assert {line.component.split(":")[0] for line in integrity} == {"sealer"}
    assert all(line.integrity for line in lines if line.component.startswith("sealer:"))
    assert not _line(lines, "SNS Publish").integrity
    assert costs.integrity_total(lines) == pytest.approx(
        sum(line.usd_per_million for line in integrity)
    )
    # No notices, no read-back: one head query (1 RRU) over 1,000 sealed records.
    assert _line(lines, "sealer: DynamoDB read units").usd_per_million == pytest.approx(
        0.125 / 1000
    )


def test_checkpoint_puts_are_priced_at_s3s_put_rate_named_or_as_every_s3_request() -> None:
    named = _seal(s3={"s3:PutObject": OperationCount(requests=2)})
    lines = costs.cost_per_million(_usage(named), _facts(), PATH)
    # 2 PUTs over 1,000 sealed records at $0.005 per 1,000.
    assert _line(lines, "sealer: S3 requests").usd_per_million == pytest.approx(2 * 5.0 / 1000)
    unnamed = _seal(s3={"s3:*": OperationCount(requests=3)})
    assert costs.s3_put_requests(unnamed.requests) == 3
    assert costs.s3_put_requests(_seal().requests) == 0


def test_a_full_stream_batch_is_ten_thousand_records_or_what_six_mb_holds() -> None:
    small = _seal()  # 1,100 bytes per stream record: 6 MB holds 5,719
    assert costs.full_stream_batch(small) == 6 * 1024 * 1024 // 1100
    tiny = SealRun({}, _use(SEALER, 1, 1000), 1000, 1, payload_bytes=1000 * 300)
    assert costs.full_stream_batch(tiny) == 10_000


def test_at_a_full_stream_batch_only_the_per_invocation_sealer_lines_shrink() -> None:
    seal = _seal(s3={"s3:PutObject": OperationCount(requests=2)})
    lines = costs.cost_per_million(_usage(seal), _facts(), PATH)
    full = costs.at_full_stream_batch(lines, seal)
    factor = 1000 / costs.full_stream_batch(seal)
    for before, after in zip(lines, full, strict=True):
        if before.integrity and before.key in costs.PER_BATCH_KEYS:
            assert after.usd_per_million == pytest.approx(before.usd_per_million * factor)
        else:  # the handler's CPU per record, and every line outside the sealer
            assert after == before
    assert _line(full, "sealer: KMS Sign").usd_per_million == pytest.approx(
        costs.KMS_ASYMMETRIC.usd * costs.MILLION / costs.full_stream_batch(seal)
    )
    # Never more invocations than measured: a run whose batches were already full is unchanged.
    bigger = SealRun(seal.requests, _use(SEALER, 1, 20_000), 20_000, 1, payload_bytes=20_000 * 100)
    lines = costs.cost_per_million(_usage(bigger), _facts(), PATH)
    assert costs.at_full_stream_batch(lines, bigger) == lines


def _run(no_index: float, integrity: float, solutions: float) -> dict[str, Any]:
    return {
        "no_index": {
            "label": "project, index off",
            "full_batches": {"cost_total": no_index, "cost_total_integrity": integrity},
        },
        "solutions": {
            "label": "AWS Solutions Constructs",
            "full_batches": {"cost_total": solutions, "cost_total_integrity": 0.0},
        },
    }


def test_goals_are_met_at_or_under_their_bounds() -> None:
    verdicts = [verdict for _, _, verdict in report.integrity_goals(_run(1.75, 0.03, 1.73))]
    assert verdicts == ["met", "met", "met"]


def test_goals_are_not_met_over_their_bounds() -> None:
    # Over 1.10 x $1.605, more above the peer than the premium, a premium over $0.03.
    verdicts = [verdict for _, _, verdict in report.integrity_goals(_run(2.10, 0.36, 1.70))]
    assert verdicts == ["NOT met", "NOT met", "NOT met"]


def test_index_off_goal_bound_is_ten_percent_over_the_floor() -> None:
    goal, _, _ = report.integrity_goals(_run(1.0, 0.0, 1.0))[0]
    assert "$1.766" in goal
    just_over = 1.10 * costs.FLOOR_PER_MILLION + 0.001
    assert report.integrity_goals(_run(just_over, 0.0, just_over))[0][2] == "NOT met"


def test_template_facts_read_log_format_tracing_and_the_log_groups_data_protection(
    tmp_path: Path,
) -> None:
    template = {
        "Resources": {
            "Logs": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"DataProtectionPolicy": {"Name": "mask"}},
            },
            "Protected": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "MemorySize": 256,
                    "Architectures": ["arm64"],
                    "LoggingConfig": {"LogFormat": "JSON", "LogGroup": {"Ref": "Logs"}},
                    "TracingConfig": {"Mode": "Active"},
                },
            },
            "Plain": {"Type": "AWS::Lambda::Function", "Properties": {}},
        }
    }
    (tmp_path / "S.template.json").write_text(json.dumps(template))
    side = Configuration("k", "label", tmp_path, "S", "s", "o", "r", PATH)
    functions = side.facts().functions
    assert functions["Protected"] == FunctionFacts(
        "Protected", 256, "arm64", "JSON", tracing=True, data_protection=True
    )
    assert functions["Plain"] == FunctionFacts("Plain", 128, "x86_64", "Text")


def test_side_environment_requirements_are_pinned_and_name_the_real_patterns() -> None:
    requirements = solutions_venv.pinned_requirements(solutions_venv.REQUIREMENTS.read_text())
    assert "aws-cdk-lib==2.273.0" in requirements
    for pattern in ("aws-sns-sqs", "aws-sqs-lambda", "aws-lambda-dynamodb"):
        assert f"aws-solutions-constructs.{pattern}==2.105.0" in requirements
    with pytest.raises(ValueError, match="not pinned"):
        solutions_venv.pinned_requirements("aws-cdk-lib>=2\n")
