"""`python -m bench --only recorder-cpu`: per-event CPU from the recorder's invocations, printed
beside the seed's with the goal's verdict (no timing is asserted, only the arithmetic)."""

from __future__ import annotations

from bench.load import FunctionUse, Usage
from bench.recorder_cpu import RecorderCpu, console, recorder_use


def _usage(recorder_cpu_ms: list[float]) -> Usage:
    publisher = FunctionUse("Publisher", durations_ms=[5.0] * 4, cpu_ms=[99.0] * 4)
    recorder = FunctionUse(
        "Recorder", durations_ms=[10.0] * len(recorder_cpu_ms), cpu_ms=recorder_cpu_ms
    )
    return Usage(
        recorded=4,
        requests={},
        functions={"Publisher": publisher, "Recorder": recorder},
        publisher="Publisher",
        seal=None,
    )


def test_the_recorders_cpu_excludes_the_publishers_invocations() -> None:
    use = recorder_use(_usage([3.0, 5.0]))

    assert use.invocations == 2
    assert sum(use.cpu_ms) == 8.0


def test_cpu_per_event_is_the_runs_recorder_cpu_over_the_events_recorded() -> None:
    figure = RecorderCpu("project", "backlog", events=20, invocations=2, cpu_ms=30.0)

    assert figure.mean_batch == 10.0
    assert figure.cpu_ms_per_invocation == 15.0
    assert figure.cpu_ms_per_event == 1.5


def test_the_table_shows_both_side_by_side_with_the_goal_met_or_not_per_kind_of_run() -> None:
    figures = [
        RecorderCpu("project", "load", events=30, invocations=10, cpu_ms=75.0),
        RecorderCpu("seed", "load", events=30, invocations=30, cpu_ms=60.0),
        RecorderCpu("seed", "backlog", events=30, invocations=30, cpu_ms=60.0),
        RecorderCpu("project", "backlog", events=30, invocations=3, cpu_ms=54.0),
    ]

    lines = console(figures, "seed").splitlines()

    assert lines[0].split()[:3] == ["configuration", "run", "events"]
    assert lines[1].split() == ["project", "load", "30", "10", "3.00", "7.50", "2.50"]
    assert lines[-2] == (
        "goal (load): project recorder CPU per event 2.50 ms vs the seed's 2.00 ms (1.25x): NOT met"
    )
    assert lines[-1] == (
        "goal (backlog): project recorder CPU per event 1.80 ms vs the seed's 2.00 ms (0.90x): met"
    )
