"""`python -m bench.recorder_profile`: the recorder's handler measured in-process on signed
batches, its AWS calls to a moto server on loopback (no timing is asserted: only that every
message passes the recorder's checks and is counted once)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.recorder_profile import HandlerCpu

ROOT = Path(__file__).resolve().parents[2]


def _run(*arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bench.recorder_profile", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cpu_per_batch_and_per_event_are_the_measured_cpu_over_batches_and_events() -> None:
    figure = HandlerCpu(batches=4, events=10, cpu_ms=25.0)

    assert figure.per_batch_ms == 6.25
    assert figure.per_event_ms == 2.5


def test_every_signed_message_is_recorded_and_the_warm_up_batch_is_not_counted() -> None:
    # The harness exits non-zero if the recorder fails any message (signature, rules, write or
    # seal notice): a zero exit means all were recorded.
    output = _run("--batch-size", "2", "--events", "6")

    assert re.search(r"batches of 2: 3 batches, 6 events, CPU [0-9.]+ ms per batch", output)


def test_the_handlers_own_code_can_be_measured_with_aws_answered_in_process() -> None:
    output = _run("--batch-size", "3", "--events", "3", "--stub-aws", "--profile")

    assert "batches of 3: 1 batches, 3 events" in output
    assert "record_audit_event.py" in output  # cProfile's table names the handler's functions
