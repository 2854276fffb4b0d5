"""The recorder's handler CPU per event, the project's beside the seed's, in one run.

    python -m bench --only recorder-cpu [--events 300] [--assembly cdk.out]

Issue 17's goal for the recorder: CPU per event at or below the seed's, in the same run. Both
configurations run on the emulator as in the full ``make bench``: events published at the
publishers' pace (batches as they come), then a paused backlog (full batches). Each recorder
invocation's CPU time is its worker's own process time (``FunctionUse.cpu_ms``); per event is
the sum over the run's recorder invocations divided by the events recorded. The table prints
the measured figures side by side and says whether the goal is met; nothing is asserted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import configurations
from bench.configurations import Configuration
from bench.load import FunctionUse, Usage, run_drain, run_load

__all__ = ["RecorderCpu", "console", "measure", "recorder_use"]


@dataclass(frozen=True)
class RecorderCpu:
    """One configuration's recorder CPU in one kind of run."""

    label: str
    run: str
    """"load" (events at the publishers' pace) or "backlog" (full batches)."""
    events: int
    invocations: int
    cpu_ms: float
    """All the run's recorder invocations' handler CPU, summed."""

    @property
    def mean_batch(self) -> float:
        return self.events / self.invocations if self.invocations else 0.0

    @property
    def cpu_ms_per_invocation(self) -> float:
        return self.cpu_ms / self.invocations if self.invocations else 0.0

    @property
    def cpu_ms_per_event(self) -> float:
        return self.cpu_ms / self.events if self.events else 0.0


def recorder_use(usage: Usage) -> FunctionUse:
    """The run's recorder invocations (every function but the publisher and the sealer's
    separate run), merged into one."""
    merged = FunctionUse("recorder")
    for logical_id, use in usage.functions.items():
        if logical_id == usage.publisher:
            continue
        merged.durations_ms.extend(use.durations_ms)
        merged.cpu_ms.extend(use.cpu_ms)
        merged.batch_sizes.extend(use.batch_sizes)
    return merged


def _figure(label: str, run: str, usage: Usage) -> RecorderCpu:
    use = recorder_use(usage)
    return RecorderCpu(label, run, usage.recorded, use.invocations, sum(use.cpu_ms))


def measure(
    sides: Sequence[Configuration],
    events: int,
    publishers: int,
    progress: Callable[[str], None],
) -> list[RecorderCpu]:
    """Each side's recorder CPU under load, then as a backlog (in reverse order, so that a
    machine getting busier or quieter favours neither)."""
    figures: list[RecorderCpu] = []
    for side in sides:
        progress(f"{events:,} events end to end through {side.label} ...")
        figures.append(_figure(side.label, "load", run_load(side, events, publishers).usage))
    for side in reversed(sides):
        progress(f"{events:,} events as a paused backlog through {side.label} ...")
        figures.append(_figure(side.label, "backlog", run_drain(side, events, publishers).usage))
    return figures


def console(figures: Sequence[RecorderCpu], baseline_label: str) -> str:
    """The table, and per kind of run the goal (CPU per event at or below the baseline's)."""
    lines = [
        f"{'configuration':<32} {'run':<8} {'events':>6} {'invocations':>11} "
        f"{'mean batch':>10} {'CPU ms/invocation':>17} {'CPU ms/event':>12}"
    ]
    for figure in figures:
        lines.append(
            f"{figure.label:<32} {figure.run:<8} {figure.events:>6} {figure.invocations:>11} "
            f"{figure.mean_batch:>10.2f} {figure.cpu_ms_per_invocation:>17.2f} "
            f"{figure.cpu_ms_per_event:>12.2f}"
        )
    lines.append("")
    for run in ("load", "backlog"):
        baseline = [f for f in figures if f.run == run and f.label == baseline_label]
        others = [f for f in figures if f.run == run and f.label != baseline_label]
        if not baseline:
            continue
        for figure in others:
            ratio = figure.cpu_ms_per_event / baseline[0].cpu_ms_per_event
            verdict = "met" if ratio <= 1 else "NOT met"
            lines.append(
                f"goal ({run}): {figure.label} recorder CPU per event "
                f"{figure.cpu_ms_per_event:.2f} ms vs the seed's "
                f"{baseline[0].cpu_ms_per_event:.2f} ms ({ratio:.2f}x): {verdict}"
            )
    return "\n".join(lines)


def main(assembly: Path, events: int, publishers: int, progress: Callable[[str], None]) -> int:
    """``python -m bench --only recorder-cpu``: the project's default stack and the seed."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-recorder-cpu-") as workdir:
        progress("synthesizing the seed ...")
        seed = configurations.original(Path(workdir) / "original")
        sides = [configurations.project(assembly.resolve()), seed]
        figures = measure(sides, events, publishers, progress)
    print(console(figures, seed.label))
    sys.stdout.flush()
    return 0
