"""`make bench`: the project next to its peers and the seed, in one run, on this machine.

    python -m bench [--assembly cdk.out] [--events 300[,1000]] [--publishers 4] [--bulk 10000]
    python -m bench --only recorder-cpu [--events 300]   (the recorder's CPU beside the seed's)

Peers, each its own synthesized stack on the embedded emulator: the project's default
AuditStack, the project with the by-type index off, the AWS Solutions Constructs composition
(from its 2.105.0 packages, in the side environment bench/.venv-solutions) and the seed's
Serverless configuration. Prints the tables and writes bench/results/{report.md,
chart.png, results.json}. A benchmark, not a test: it asserts nothing and reports each goal as
met or not met.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit_stack.lambda_code import contract
from bench import (
    bulk,
    coldstart,
    configurations,
    costs,
    heat,
    recorder_cpu,
    recorder_latency,
    report,
)
from bench.configurations import Configuration
from bench.items import write_units
from bench.load import DrainResult, LoadResult, run_drain, run_load

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CHART_NAME = "chart.png"
# The simulated DynamoDB latencies the recorder's batch time is measured at.
SIMULATED_LATENCIES_MS = (5.0, 10.0)
# Both event sources run at most 5 batches at once here: the project's MaximumConcurrency, and
# the emulator's default for the mappings that set none.
MAX_CONCURRENT_BATCHES = 5


def _events(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("give event counts like 300 or 300,1000")
    return sizes


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--assembly", type=Path, default=Path("cdk.out"), help="the project's cdk.out"
    )
    parser.add_argument(
        "--events",
        type=_events,
        default=[300],
        help="events per configuration and run, comma-separated (default 300: the default run "
        "stays under 5 minutes on 2 quiet cores)",
    )
    parser.add_argument(
        "--publishers", type=int, default=4, help="threads invoking the publisher (default 4)"
    )
    parser.add_argument(
        "--bulk", type=int, default=bulk.EVENTS, help="events of the bulk scenario (10,000)"
    )
    parser.add_argument(
        "--import-repetitions",
        type=int,
        default=5,
        help="fresh interpreters per handler import measurement (default 5)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="output folder")
    parser.add_argument(
        "--only",
        choices=["recorder-cpu"],
        help="run one part and print its table (no results files): recorder-cpu, the "
        "recorder's handler CPU per event beside the seed's (bench/recorder_cpu.py)",
    )
    return parser.parse_args(argv)


def _distribution(values: list[int]) -> dict[str, Any]:
    ordered = sorted(values)
    if not ordered:
        return {}
    return {
        "items": len(ordered),
        "min": ordered[0],
        "median": statistics.median(ordered),
        "p99": ordered[max(0, round(0.99 * len(ordered)) - 1)],
        "max": ordered[-1],
        "at_most_1kb_share": sum(size <= 1024 for size in ordered) / len(ordered),
        "write_units_per_item": sum(map(write_units, ordered)) / len(ordered),
    }


def summarize(configuration: Configuration, result: LoadResult, drain: DrainResult) -> Any:
    """The JSON form of one configuration's runs at one size."""
    facts = configuration.facts()
    per_event: dict[str, float] = {}
    for operation, count in sorted(result.requests.items()):
        if operation == "sqs:ReceiveMessage":
            per_event["sqs:ReceiveMessage (with messages)"] = (
                count.requests - count.empty_receives
            ) / result.events
            per_event["sqs:ReceiveMessage (empty, not costed)"] = (
                count.empty_receives / result.events
            )
        elif operation == "lambda:Invoke":
            per_event["lambda:Invoke (the publisher, called by the load)"] = (
                count.requests / result.events
            )
        else:
            per_event[operation] = count.requests / result.events
    recorder_invocations = sum(
        use.invocations
        for logical_id, use in result.functions.items()
        if logical_id != result.publisher
    )
    # The event source invokes the recorder inside the emulator, without an HTTP request.
    per_event["Lambda invocations of the recorder (by the event source)"] = (
        recorder_invocations / result.events
    )
    lines = costs.cost_per_million(result.usage, facts, configuration.recorder_path)
    slower = costs.cost_per_million(
        result.usage, facts, configuration.recorder_path, latency_scale=2.0
    )
    # The backlog's mix: full batches, as at a high event rate.
    full = costs.cost_per_million(drain.usage, facts, configuration.recorder_path)
    seal = drain.usage.seal
    stream_full = costs.at_full_stream_batch(full, seal) if seal else full
    drain_invocations = sum(
        use.invocations
        for logical_id, use in drain.usage.functions.items()
        if logical_id != drain.usage.publisher
    )
    # A model, like the cost's duration: events per second of modelled recorder time (CPU plus
    # the assumed waits), times the batches the event source runs at once.
    recorder_uses = [
        use
        for logical_id, use in drain.usage.functions.items()
        if logical_id != drain.usage.publisher
    ]
    modelled_seconds = (
        sum(
            costs.modelled_ms(
                use,
                [
                    costs.recorder_wait_ms(size, configuration.recorder_path)
                    for size in use.batch_sizes
                ],
            )
            for use in recorder_uses
        )
        / 1000
    )
    modelled_capacity = (
        MAX_CONCURRENT_BATCHES * drain.recorded / modelled_seconds if modelled_seconds else 0.0
    )
    return {
        "label": configuration.label,
        "stack": configuration.stack_name,
        "events": result.events,
        "recorded": result.recorded,
        "duplicates": result.duplicates,
        "dead_lettered": result.dead_lettered,
        "throughput": result.throughput,
        "drain_throughput": drain.throughput,
        "drain_recorded": drain.recorded,
        "drain_seconds": drain.drain_seconds,
        "modelled_capacity": modelled_capacity,
        "p50_ms": result.latency_percentile(50),
        "p95_ms": result.latency_percentile(95),
        "p99_ms": result.latency_percentile(99),
        "span_seconds": result.span_seconds,
        "wall_seconds": result.wall_seconds,
        "max_queue_depth": result.max_queue_depth,
        "mean_batch_size": result.events / recorder_invocations if recorder_invocations else 0,
        "item_sizes": _distribution(result.item_sizes),
        "table_heat": heat.index_heat(
            result.table_keys, f"{configuration.label}: table after the load"
        ).as_json(),
        "index_heat": (
            heat.index_heat(
                result.index_keys, f"{configuration.label}: index after the load"
            ).as_json()
            if result.index_keys
            else None
        ),
        "seal": (
            {
                "records_sealed": result.seal.records_sealed,
                "digests_written": result.seal.digests_written,
                "requests": {op: c.requests for op, c in sorted(result.seal.requests.items())},
            }
            if result.seal
            else None
        ),
        "requests_per_event": per_event,
        "cost_lines": [asdict(line) for line in lines],
        "cost_total": costs.total(lines),
        "cost_total_integrity": costs.integrity_total(lines),
        "cost_total_upper": costs.total(lines, upper=True),
        "cost_total_double_latency": costs.total(slower),
        "cost_total_with_publisher": costs.total(lines, audit_only=False),
        "full_batches": {
            "mean_batch_size": drain.recorded / drain_invocations if drain_invocations else 0,
            # The sealer's lines at a full stream batch (its per-invocation lines spread over
            # the records a full batch holds): what "full batches" means for the sealer, whose
            # batch is the table's stream over one batching window.
            "cost_lines": [asdict(line) for line in stream_full],
            "cost_total": costs.total(stream_full),
            "cost_total_integrity": costs.integrity_total(stream_full),
            "cost_total_integrity_as_measured": costs.integrity_total(full),
            "stream_batch": (
                {
                    "measured_records_per_invocation": seal.records_sealed
                    / max(1, seal.function.invocations),
                    "bytes_per_record": seal.payload_bytes / max(1, seal.records_sealed),
                    "full_batch_records": costs.full_stream_batch(seal),
                }
                if seal
                else None
            ),
            "integrity_models": [
                {
                    "design": (
                        f"as built, as measured: one stream batch of "
                        f"{seal.records_sealed / max(1, seal.function.invocations):,.0f} records"
                    ),
                    "detection": "the stream's every write; the writer MAC",
                    "usd_per_million": costs.integrity_total(full),
                },
                {
                    "design": (
                        f"as built, at a full stream batch of {costs.full_stream_batch(seal):,} "
                        f"records (10,000, or Lambda's 6 MB payload at the measured "
                        f"{seal.payload_bytes / max(1, seal.records_sealed):,.0f} B per stream "
                        "record): the per-invocation lines spread over it"
                    ),
                    "detection": "the same",
                    "usd_per_million": costs.integrity_total(stream_full),
                },
            ]
            if seal and costs.integrity_total(full)
            else [],
            "cost_total_upper": costs.total(stream_full, upper=True),
            "cost_total_with_publisher": costs.total(stream_full, audit_only=False),
        },
        "functions": {
            logical_id: {
                "invocations": use.invocations,
                "mean_ms": use.mean_ms,
                "mean_cpu_ms": sum(use.cpu_ms) / len(use.cpu_ms) if use.cpu_ms else 0.0,
                "errors": use.errors,
            }
            for logical_id, use in result.functions.items()
        },
        "template": {
            "batch_size": facts.batch_size,
            "report_batch_item_failures": facts.report_batch_item_failures,
            "global_secondary_indexes": facts.global_secondary_indexes,
            "recorder_concurrent_writes": configuration.recorder_path.concurrent_writes,
            "functions": {
                logical_id: {"memory_mb": found.memory_mb, "architecture": found.architecture}
                for logical_id, found in facts.functions.items()
            },
        },
    }


_STARTED = time.monotonic()


def _progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:5.0f} s] {message}", file=sys.stderr, flush=True)


def _quietly(function: Any, *arguments: Any) -> Any:
    # The recorder's Powertools metrics print to stdout; the console is for the tables.
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*arguments)


def main(argv: list[str]) -> int:
    arguments = _arguments(argv)
    if arguments.only == "recorder-cpu":
        return recorder_cpu.main(
            arguments.assembly, arguments.events[-1], arguments.publishers, _progress
        )
    command = "python -m bench " + shlex.join(argv) if argv else "python -m bench"
    started = time.monotonic()
    started_load = os.getloadavg()
    arguments.results.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as workdir:
        _progress(
            "synthesizing the peers (project with the index off, Solutions Constructs, "
            "the seed) ..."
        )
        solutions, solutions_how = configurations.solutions_constructs(Path(workdir) / "solutions")
        _progress(f"Solutions Constructs peer: {solutions_how}")
        sides = [
            configurations.project(arguments.assembly.resolve()),
            configurations.project_without_index(Path(workdir) / "no-index"),
            solutions,
            configurations.original(Path(workdir) / "original"),
        ]
        _progress("partition heat of 10,000 events from the recorder's item builder ...")
        built = heat.recorder_items(heat.index_shards(sides[0].template))
        builder_heat = [
            heat.index_heat(
                (item[contract.PARTITION_KEY]["S"] for item in built),
                "table key, recorder item builder",
            ).as_json(),
            heat.index_heat(
                (item[heat.INDEX_KEY_ATTRIBUTE]["S"] for item in built),
                "index key, recorder item builder",
            ).as_json(),
        ]
        _progress("recorder batch time with simulated DynamoDB latency ...")
        latency_runs = [
            asdict(run)
            for latency in SIMULATED_LATENCIES_MS
            for run in _quietly(recorder_latency.measure, latency)
        ]
        _progress("measuring cold starts (the project's and the seed's code) ...")
        cold_starts = [
            entry
            for side in (sides[0], sides[-1])
            for entry in coldstart.measure(side, arguments.import_repetitions)
        ]
        runs: dict[str, Any] = {}
        for events in arguments.events:
            size_started = time.monotonic()
            loads: dict[str, LoadResult] = {}
            drains: dict[str, DrainResult] = {}
            load_averages: dict[str, list[float]] = {side.key: [] for side in sides}
            # In order then in reverse: a machine that gets busier or quieter during the run
            # favours no configuration.
            for side in sides:
                load_averages[side.key].append(os.getloadavg()[0])
                _progress(f"{events:,} events end to end through {side.label} ...")
                loads[side.key] = run_load(side, events, arguments.publishers)
                _progress(
                    f"  {loads[side.key].recorded:,} recorded at "
                    f"{loads[side.key].throughput:.1f} events/s"
                )
            for side in reversed(sides):
                load_averages[side.key].append(os.getloadavg()[0])
                _progress(f"{events:,} events as a paused backlog through {side.label} ...")
                drains[side.key] = run_drain(side, events, arguments.publishers)
                _progress(
                    f"  {drains[side.key].recorded:,} recorded at "
                    f"{drains[side.key].throughput:.1f} events/s"
                )
            runs[str(events)] = {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "publishers": arguments.publishers,
                "elapsed_seconds": time.monotonic() - size_started,
                "configurations": {
                    side.key: {
                        **summarize(side, loads[side.key], drains[side.key]),
                        "load_averages": load_averages[side.key],
                    }
                    for side in sides
                },
            }
        _progress(f"bulk: {arguments.bulk:,} deletions with publish_many ...")
        bulk_load = os.getloadavg()[0]
        bulk_result = bulk.run_bulk(sides[0], arguments.bulk, arguments.publishers)
        notes = report.notes(
            [(side.label, side.facts()) for side in sides], arguments.publishers, solutions_how
        )
    document: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_start": list(started_load),
            "load_average_at_end": list(os.getloadavg()),
        },
        "runs": runs,
        "bulk": {
            **asdict(bulk_result),
            "sns_requests_per_event": bulk_result.sns_requests_per_event,
            "load_average_before": bulk_load,
        },
        "recorder_latency": latency_runs,
        "call_latency_ms": costs.CALL_LATENCY_MS,
        "cold_start": {
            "repetitions": arguments.import_repetitions,
            "entries": [asdict(entry) for entry in cold_starts],
        },
        "builder_heat": builder_heat,
        "floor_per_million": costs.FLOOR_PER_MILLION,
        "floor_publish_batch_per_million": costs.FLOOR_PUBLISH_BATCH_PER_MILLION,
        "solutions_peer": solutions_how,
        "notes": notes,
        "elapsed_seconds": time.monotonic() - started,
    }
    (arguments.results / "results.json").write_text(json.dumps(document, indent=1) + "\n")
    (arguments.results / "report.md").write_text(report.markdown(document, CHART_NAME))
    report.chart(document, arguments.results / CHART_NAME)
    print(report.console(document))
    print(
        f"\nwrote {arguments.results}/report.md, {CHART_NAME}, results.json "
        f"in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
