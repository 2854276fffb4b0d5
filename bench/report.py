"""The benchmark's outputs: tables (console and Markdown), a PNG chart, and the results as JSON.

Everything renders from the JSON document, so a report can show sizes measured by earlier runs
(each with its own date and command) next to the ones just measured.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.costs import ALL_PRICES, FLOOR_PER_MILLION, PRICES_TAKEN_ON

# The goals of the issue, reported against, never tuned for.
THROUGHPUT_GOAL = 3.0
COST_GOAL = 1.3
IMPORT_GOAL_MS = 100.0

Document = dict[str, Any]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table, padded so that it also reads well in a terminal."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]

    def line(row: list[str]) -> str:
        return (
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            + " |"
        )

    ruler = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(cells[0]), ruler, *(line(row) for row in cells[1:])])


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _sizes(document: Document) -> list[str]:
    return sorted(document.get("runs", {}), key=int)


def goals(document: Document) -> list[tuple[str, str, str]]:
    """(goal, measured, met/NOT met) for every goal and every measured size."""
    found: list[tuple[str, str, str]] = []
    for size in _sizes(document):
        run = document["runs"][size]["configurations"]
        project, original = run["project"], run["original"]
        for measure, name in (
            ("throughput", "end to end"),
            ("drain_throughput", "recording capacity"),
        ):
            ratio = project[measure] / original[measure] if original[measure] else 0
            found.append(
                (
                    f">= {THROUGHPUT_GOAL:g}x the original's throughput, {name} "
                    f"({int(size):,} events)",
                    f"{project[measure]:.1f} / {original[measure]:.1f} events/s = {ratio:.2f}x",
                    _met(ratio >= THROUGHPUT_GOAL),
                )
            )
        over_floor = project["cost_total"] / FLOOR_PER_MILLION
        found.append(
            (
                f"cost per million within {COST_GOAL:g}x of the floor "
                f"${FLOOR_PER_MILLION:.3f} ({int(size):,} events)",
                f"${project['cost_total']:.3f} (audit pipeline) = {over_floor:.2f}x the floor; "
                f"original ${original['cost_total']:.3f}",
                _met(over_floor <= COST_GOAL),
            )
        )
    for entry in document.get("cold_start", {}).get("entries", []):
        if entry["configuration"] != "project":
            continue
        found.append(
            (
                f"handler import overhead < {IMPORT_GOAL_MS:g} ms ({entry['logical_id']})",
                f"{entry['handler_overhead_ms']:.1f} ms",
                _met(entry["handler_overhead_ms"] < IMPORT_GOAL_MS),
            )
        )
    return found


def throughput_table(document: Document) -> str:
    rows: list[list[object]] = []
    for size in _sizes(document):
        run = document["runs"][size]["configurations"]
        for key in ("project", "original"):
            summary = run[key]
            rows.append(
                [
                    f"{int(size):,}",
                    summary["label"],
                    f"{summary['recorded']:,}",
                    summary["duplicates"],
                    summary["dead_lettered"],
                    f"{summary['throughput']:.1f}",
                    f"{summary['drain_throughput']:.1f}",
                    f"{summary['p50_ms']:.0f}",
                    f"{summary['p95_ms']:.0f}",
                    f"{summary['p99_ms']:.0f}",
                    f"{summary['max_queue_depth']:,}",
                    f"{summary['wall_seconds']:.0f}",
                    " / ".join(f"{value:.1f}" for value in summary.get("load_averages", [])),
                ]
            )
        project, original = run["project"], run["original"]
        rows.append(
            [
                f"{int(size):,}",
                "ratio project/original",
                "",
                "",
                "",
                f"{project['throughput'] / original['throughput']:.2f}x",
                f"{project['drain_throughput'] / original['drain_throughput']:.2f}x",
                f"{project['p50_ms'] / original['p50_ms']:.2f}x",
                f"{project['p95_ms'] / original['p95_ms']:.2f}x",
                f"{project['p99_ms'] / original['p99_ms']:.2f}x",
                "",
                "",
                "",
            ]
        )
    return table(
        [
            "events",
            "configuration",
            "recorded",
            "dupl.",
            "DLQ",
            "events/s end to end",
            "events/s recording",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max queue",
            "e2e wall s",
            "load avg before",
        ],
        rows,
    )


def requests_table(document: Document, size: str) -> str:
    run = document["runs"][size]["configurations"]
    project, original = run["project"]["requests_per_event"], run["original"]["requests_per_event"]
    operations = sorted(set(project) | set(original))
    rows = [
        [operation, f"{project.get(operation, 0):.3f}", f"{original.get(operation, 0):.3f}"]
        for operation in operations
    ]
    return table(["per audited event", "project", "original"], rows)


def cost_table(document: Document, size: str) -> str:
    run = document["runs"][size]["configurations"]
    rows: list[list[object]] = []
    for key in ("project", "original"):
        summary = run[key]
        for line in summary["cost_lines"]:
            rows.append(
                [
                    summary["label"],
                    line["component"] + ("" if line["audit"] else " (beside the audit)"),
                    f"{line['units_per_event']:.4f}",
                    f"${line['usd_per_million']:.3f}",
                ]
            )
        rows.append(
            [
                summary["label"],
                "total: audit pipeline, SNS publish onwards",
                "",
                f"${summary['cost_total']:.3f}",
            ]
        )
        rows.append(
            [
                summary["label"],
                "total with the publisher function",
                "",
                f"${summary['cost_total_with_publisher']:.3f}",
            ]
        )
    rows.append(["floor", "1 SNS publish + 1 DynamoDB WRU", "", f"${FLOOR_PER_MILLION:.3f}"])
    return table(["configuration", "component", "units per event", "USD per million"], rows)


def cold_start_table(document: Document) -> str:
    cold = document.get("cold_start", {})
    rows = [
        [
            entry["configuration"],
            entry["logical_id"],
            entry["handler"],
            f"{entry['handler_overhead_ms']:.1f}",
            f"{entry['boto3_ms']:.0f}",
            f"{entry['asset_zip_bytes'] / 1024:.1f}",
        ]
        for entry in cold.get("entries", [])
    ]
    return table(
        [
            "configuration",
            "function",
            "handler",
            "import above boto3, ms (median)",
            "boto3 import, ms",
            "asset zip, KiB",
        ],
        rows,
    )


def prices_table() -> str:
    rows = [
        [price.item, f"${price.usd:.10g} per {price.unit}", price.source] for price in ALL_PRICES
    ]
    return table(["price (us-east-1)", "USD", f"source (read {PRICES_TAKEN_ON})"], rows)


def heat_table(document: Document) -> str:
    """The by-type index's hottest partition key, as writes/s at 10,000 events/s of one type."""
    rows = []
    entries = [document["index_heat"]] if "index_heat" in document else []
    for size in _sizes(document):
        project = document["runs"][size]["configurations"].get("project", {})
        if project.get("index_heat"):
            entries.append(project["index_heat"])
    for entry in entries:
        rows.append(
            [
                entry["source"],
                f"{entry['events']:,}",
                str(entry["partition_keys"]),
                f"{entry['hottest_share'] * 100:.2f} %",
                f"{entry['writes_per_second_at_target']:.0f}",
                _met(entry["writes_per_second_at_target"] < 1000),
            ]
        )
    return table(
        [
            "index keys from",
            "events",
            "partition keys",
            "hottest key's share",
            "writes/s on it at 10,000 events/s",
            "< 1,000/s",
        ],
        rows,
    )


def goals_table(document: Document) -> str:
    return table(["goal", "measured", "result"], goals(document))


def console(document: Document) -> str:
    """What `make bench` prints."""
    largest = _sizes(document)[-1]
    parts = [
        "Throughput and publish-to-record latency (embedded emulator, this machine)",
        throughput_table(document),
        "",
        f"AWS requests per audited event ({int(largest):,} events)",
        requests_table(document, largest),
        "",
        f"Cost per million audited events, us-east-1 list prices of {PRICES_TAKEN_ON} "
        f"({int(largest):,} events)",
        cost_table(document, largest),
        "",
        "Cold start",
        cold_start_table(document),
        "",
        "By-type index partition heat (one event type)",
        heat_table(document),
        "",
        "Goals",
        goals_table(document),
    ]
    return "\n".join(parts)


def markdown(document: Document, chart_name: str) -> str:
    """bench/results/report.md."""
    sizes = _sizes(document)
    largest = sizes[-1]
    runs = document["runs"]
    provenance = "\n".join(
        f"- {int(size):,} events: measured {runs[size]['measured_at']} with "
        f"`{runs[size]['command']}` ({runs[size]['publishers']} publisher threads"
        + (
            f", {runs[size]['elapsed_seconds'] / 60:.0f} minutes for both stacks)"
            if "elapsed_seconds" in runs[size]
            else ")"
        )
        for size in sizes
    )
    machine = document["machine"]
    cold = document.get("cold_start", {})
    sections = [
        "# Benchmark: AuditStack next to the original configuration",
        "",
        "Both stacks are synthesized CDK templates run by the embedded emulator "
        "(`audit_stack.local`) on one machine, in the same run, one after the other. "
        f"Machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}.",
        "",
        provenance,
        f"- cold start: measured {cold.get('measured_at', '-')} "
        f"({cold.get('repetitions', '-')} imports per function, median)",
        "",
        f"![throughput, latency and cost]({chart_name})",
        "",
        "## Goals",
        "",
        goals_table(document),
        "",
        "## Throughput and publish-to-record latency",
        "",
        "End to end: the publisher function is invoked closed-loop while the event source "
        "records; throughput is records divided by first publish to last record, latency each "
        "record's `recorded_at` minus its event's `occurred_at` (both taken by the functions on "
        "this machine's clock). `max queue` is the deepest the event-source queue got: a "
        "configuration that keeps up stays far below the publishers' limit, one that cannot "
        "sits at it. Recording: a backlog published with the event source paused, then recorded "
        "with the machine to itself.",
        "",
        throughput_table(document),
        "",
        f"## AWS requests per audited event ({int(largest):,} events)",
        "",
        "Counted at the emulator's HTTP endpoint (every request, including the event source's "
        "ReceiveMessage and DeleteMessageBatch), plus the invocations the event source made "
        "(not HTTP requests locally).",
        "",
        requests_table(document, largest),
        "",
        f"## Cost per million audited events ({int(largest):,} events)",
        "",
        cost_table(document, largest),
        "",
        "## Cold start",
        "",
        cold_start_table(document),
        "",
        "## By-type index partition heat",
        "",
        "Every event of one type is written to the `by-event-type-shard` index under "
        "`<event_type>#<shard>`; DynamoDB serves at most 1,000 writes/s per partition. The "
        "hottest key's share of the keys the recorder wrote, times 10,000 events/s, is what its "
        "partition must absorb at that rate: from the recorder's own item builder for 10,000 "
        "events, and from the table after each load run (all of one type).",
        "",
        heat_table(document),
        "",
        "## Prices",
        "",
        prices_table(),
        "",
        "## Method and caveats",
        "",
        *(f"- {note}" for note in document["notes"]),
        "",
    ]
    return "\n".join(sections)


def chart(document: Document, path: Path) -> None:
    """bench/results/chart.png: throughput, latency percentiles and cost, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = _sizes(document)
    runs = document["runs"]
    keys = ("project", "original")
    colors = {"project": "#1f77b4", "original": "#ff7f0e"}
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(14, 4.2))
    width = 0.38

    measures = (("throughput", "end to end"), ("drain_throughput", "recording"))
    groups = [(size, measure) for size in sizes for measure in measures]
    for offset, key in enumerate(keys):
        values = [runs[size]["configurations"][key][measure] for size, (measure, _) in groups]
        positions = [index + (offset - 0.5) * width for index in range(len(groups))]
        left.bar(positions, values, width, label=key, color=colors[key])
    left.set_xticks(
        range(len(groups)),
        [f"{name}\n{int(size):,} events" for size, (_, name) in groups],
        fontsize=8,
    )
    left.set_ylabel("audited events per second")
    left.set_title("Throughput (higher is better)")
    left.legend()

    labels = [f"{name}\n{int(size):,}" for size in sizes for name in ("p50", "p95", "p99")]
    for offset, key in enumerate(keys):
        values = [
            runs[size]["configurations"][key][f"{name}_ms"] / 1000
            for size in sizes
            for name in ("p50", "p95", "p99")
        ]
        positions = [index + (offset - 0.5) * width for index in range(len(labels))]
        middle.bar(positions, values, width, label=key, color=colors[key])
    middle.set_xticks(range(len(labels)), labels, fontsize=8)
    middle.set_yscale("log")
    middle.set_ylabel("publish to record, seconds (log)")
    middle.set_title("Latency (lower is better)")

    largest = sizes[-1]
    # The audit pipeline by service, then the publisher function (the application's) on top.
    parts = {
        "SNS": "SNS",
        "SQS": "SQS",
        "DynamoDB": "DynamoDB",
        "Lambda (recorder)": "Lambda",
        "publisher function": None,
    }
    # Not the configurations' two colours: these stack services, not configurations.
    part_colors = ["#8c564b", "#9467bd", "#2ca02c", "#d62728", "#c7c7c7"]

    def belongs(line: dict[str, Any], prefix: str | None) -> bool:
        if prefix is None:
            return not line["audit"]
        return bool(line["audit"]) and str(line["component"]).startswith(prefix)

    bottoms = [0.0, 0.0]
    for (part, prefix), color in zip(parts.items(), part_colors, strict=True):
        values = [
            sum(
                line["usd_per_million"]
                for line in runs[largest]["configurations"][key]["cost_lines"]
                if belongs(line, prefix)
            )
            for key in keys
        ]
        hatch = "//" if part == "publisher function" else None
        right.bar(keys, values, 0.5, bottom=bottoms, label=part, hatch=hatch, color=color)
        bottoms = [bottom + value for bottom, value in zip(bottoms, values, strict=True)]
    right.axhline(FLOOR_PER_MILLION, color="black", linestyle="--", linewidth=1)
    right.text(-0.45, FLOOR_PER_MILLION, "floor", va="bottom", fontsize=8)
    right.set_ylabel("USD per million audited events")
    right.set_title(f"Cost, us-east-1 ({int(largest):,}-event mix)")
    right.set_xlim(-0.6, 2.2)
    right.legend(fontsize=7, loc="center right")

    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def merge(previous: Path, current: Document) -> Document:
    """The new results over the previous file's: sizes not measured now are kept as they were."""
    if not previous.is_file():
        return current
    earlier: Document = json.loads(previous.read_text())
    merged = dict(current)
    merged["runs"] = {**earlier.get("runs", {}), **current["runs"]}
    return merged
