"""`make bench`: the project's configuration next to the original's, in one run, on this machine.

    python -m bench [--assembly cdk.out] [--events 1000[,10000]] [--publishers 4]

Prints the tables and writes bench/results/{report.md, chart.png, results.json}. A benchmark, not
a test: it asserts nothing and reports each goal as met or not met.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import coldstart, configurations, costs, heat, report
from bench.configurations import Configuration, TemplateFacts
from bench.load import BACKLOG_LIMIT, DRAIN_WAVE, DrainResult, LoadResult, run_drain, run_load

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CHART_NAME = "chart.png"


def _events(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("give event counts like 1000 or 1000,10000")
    return sizes


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--assembly", type=Path, default=Path("cdk.out"), help="the project's cdk.out"
    )
    parser.add_argument(
        "--events",
        type=_events,
        default=[1000],
        help="events per run, comma-separated (default 1000, about 3 minutes on 2 cores; "
        "1000,10000 takes about half an hour)",
    )
    parser.add_argument(
        "--publishers", type=int, default=4, help="threads invoking the publisher (default 4)"
    )
    parser.add_argument(
        "--import-repetitions",
        type=int,
        default=7,
        help="fresh interpreters per handler import measurement (default 7)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="output folder")
    return parser.parse_args(argv)


def summarize(
    configuration: Configuration, result: LoadResult, drain: DrainResult, facts: TemplateFacts
) -> Any:
    """The JSON form of one configuration's runs at one size."""
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
    # The event source invokes the recorder inside the emulator, without an HTTP request.
    per_event["Lambda invocations of the recorder (by the event source)"] = (
        sum(
            use.invocations
            for logical_id, use in result.functions.items()
            if logical_id != result.publisher
        )
        / result.events
    )
    lines = costs.cost_per_million(result, facts)
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
        "p50_ms": result.latency_percentile(50),
        "p95_ms": result.latency_percentile(95),
        "p99_ms": result.latency_percentile(99),
        "span_seconds": result.span_seconds,
        "wall_seconds": result.wall_seconds,
        "max_queue_depth": result.max_queue_depth,
        "index_heat": (
            heat.index_heat(
                result.index_keys, f"table after the {result.events:,}-event load"
            ).as_json()
            if result.index_keys
            else None
        ),
        "requests_per_event": per_event,
        "cost_lines": [asdict(line) for line in lines],
        "cost_total": costs.total(lines),
        "cost_total_with_publisher": costs.total(lines, audit_only=False),
        "functions": {
            logical_id: {
                "invocations": use.invocations,
                "mean_ms": use.mean_ms,
                "errors": use.errors,
            }
            for logical_id, use in result.functions.items()
        },
        "template": {
            "batch_size": facts.batch_size,
            "report_batch_item_failures": facts.report_batch_item_failures,
            "global_secondary_indexes": facts.global_secondary_indexes,
            "functions": {
                logical_id: {"memory_mb": found.memory_mb, "architecture": found.architecture}
                for logical_id, found in facts.functions.items()
            },
        },
    }


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _notes(sides: list[Configuration], publishers: int) -> list[str]:
    described = []
    for side in sides:
        facts = side.facts()
        functions = ", ".join(
            f"{found.logical_id} {found.memory_mb} MB {found.architecture}"
            for found in facts.functions.values()
        )
        described.append(
            f"{side.label} (read from its template): batch size {facts.batch_size}, "
            f"ReportBatchItemFailures {'on' if facts.report_batch_item_failures else 'off'}, "
            f"{facts.global_secondary_indexes} GSI, {functions}."
        )
    return [
        *described,
        "The original is rebuilt as its own CDK stack (`bench/original/`): the Serverless "
        "configuration (batch size 1, one unconditional PutItem per message, no partial batch "
        "response, 128 MB x86_64) with plain boto3 handlers; its code is Python like the project's "
        "so that both run in the same emulator.",
        f"Load: {publishers} threads invoke the publisher function closed-loop (the next "
        "invocation as soon as the last returned) while the event source records; both stacks get "
        "a short warm-up first. Both event sources run at most 5 batches at once (the project's "
        "MaximumConcurrency; the emulator's default for the original).",
        f"Publishers wait while the event-source queue holds more than {BACKLOG_LIMIT} messages: "
        "a configuration that cannot keep up then runs at its recording capacity with a bounded "
        "backlog, and its latency includes that queueing. Without the bound the backlog grows "
        "without end, and moto, which scans the whole queue on every receive, would slow down "
        "itself rather than the configuration under test.",
        "Recording capacity: the same number of events is published again with the event "
        "source paused (like a disabled mapping), then the time to record that backlog is "
        f"measured, in waves of at most {DRAIN_WAVE:,}: the recording side alone, with the "
        "whole machine to itself. The goal's throughput ratio is reported for both measures.",
        "Other work on the machine slows whichever run it overlaps: the 1-minute load average "
        "before each measurement is in the throughput table, and the order is project then "
        "original end to end, original then project for the recording measure.",
        "Cost scope: the audit pipeline from the SNS publish onwards (the floor's scope) is "
        "compared with the floor; the publisher function's own request and duration (the "
        "application's deleteAccount, which exists to delete the account) are listed beside it "
        "and included in the second total.",
        "Everything shares this machine: moto, the event-source pollers and every function's "
        "worker processes. The numbers compare the two configurations' work per event on the same "
        "machine; they are not AWS's throughput or latency (AWS runs recorders in parallel on "
        "separate hardware, and a 128 MB function gets a fraction of a vCPU).",
        "Requests are counted exactly at the emulator's WSGI middleware rather than with botocore "
        "hooks: it sees every request the account would pay for, from the functions, the event "
        "source's pollers and clients alike, without changing the workers.",
        "Empty ReceiveMessage calls are listed but not costed: the emulator's pollers receive "
        "whenever anything changes, whereas Lambda's pollers long-poll, a per-hour idle cost "
        "rather than a per-event one.",
        "The SNS-to-SQS delivery is counted as one SQS request per event (conservatively: SNS "
        "charges nothing for delivering to SQS). DynamoDB write units are computed from each "
        "PutItem's item size (1 KB units) times 1 + the number of GSIs (each index write is billed "
        "like a table write); condition-failed writes are billed too.",
        "Lambda duration cost uses the durations measured here (each rounded up to 1 ms, as "
        "billed), which include the emulator's process hand-off and this machine's shared CPU: an "
        "estimate, not a Lambda measurement.",
        "Cold start: median over fresh interpreters of importing the handler module after "
        "`import boto3`, with the function's own environment and the installed libraries standing "
        "in for the Powertools layer (the layer itself is not part of the project's asset).",
        "10,000 events through both stacks and both measures take about half an hour on 2 cores, "
        "so `make bench` measures 1,000 by default (about 3 minutes) and keeps the other sizes "
        "of results.json; `make bench EVENTS=1000,10000` measures both sizes in one run.",
    ]


def main(argv: list[str]) -> int:
    arguments = _arguments(argv)
    command = "python -m bench " + shlex.join(argv) if argv else "python -m bench"
    started = time.monotonic()
    arguments.results.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-original-") as workdir:
        _progress("synthesizing the original configuration ...")
        sides = [
            configurations.project(arguments.assembly.resolve()),
            configurations.original(Path(workdir) / "cdk.out"),
        ]
        _progress("index partition heat of 10,000 events ...")
        recorder_heat = heat.index_heat(
            heat.recorder_keys(heat.index_shards(sides[0].template)),
            "recorder item builder",
        )
        _progress("measuring cold starts ...")
        cold_starts = [
            entry
            for side in sides
            for entry in coldstart.measure(side, arguments.import_repetitions)
        ]
        runs: dict[str, Any] = {}
        for events in arguments.events:
            size_started = time.monotonic()
            loads: dict[str, LoadResult] = {}
            drains: dict[str, DrainResult] = {}
            load_averages: dict[str, list[float]] = {side.key: [] for side in sides}
            # A-B then B-A: a machine that gets busier or quieter during the run favours neither.
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
            summaries: dict[str, Any] = {
                side.key: {
                    **summarize(side, loads[side.key], drains[side.key], side.facts()),
                    "load_averages": load_averages[side.key],
                }
                for side in sides
            }
            runs[str(events)] = {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": command,
                "publishers": arguments.publishers,
                "elapsed_seconds": time.monotonic() - size_started,
                "configurations": summaries,
            }
        notes = _notes(sides, arguments.publishers)
    document: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "runs": runs,
        "cold_start": {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "repetitions": arguments.import_repetitions,
            "entries": [asdict(entry) for entry in cold_starts],
        },
        "index_heat": recorder_heat.as_json(),
        "floor_per_million": costs.FLOOR_PER_MILLION,
        "notes": notes,
    }
    results_file = arguments.results / "results.json"
    document = report.merge(results_file, document)
    results_file.write_text(json.dumps(document, indent=1) + "\n")
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
