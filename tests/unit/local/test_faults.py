"""Fault injection (an instrument the endpoint asks about every request): fixed faults of one
operation or function, held latency, seeded shares of failures."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from audit_stack.local.http.operations import Operation
from audit_stack.local.instruments.faults import DYNAMODB_WRITE_FAULTS, Faults, InjectedFault


def test_fixed_fault_of_one_function_fails_only_its_invocations() -> None:
    faults = Faults()
    recorder = Operation(
        "lambda", "Invoke", "rest", function_name="arn:aws:lambda:r:1:function:rec"
    )
    publisher = Operation("lambda", "Invoke", "rest", function_name="pub")

    with faults.fixed("lambda:Invoke", error_code="ServiceException", function_name="rec"):
        injected = faults.apply(recorder)
        assert faults.apply(publisher) is None

    assert injected is not None
    assert (injected.error.code, injected.error.status) == (
        "ServiceException",
        "500 Internal Server Error",
    )
    assert faults.apply(recorder) is None


def test_fixed_latency_is_released_when_the_block_ends() -> None:
    faults = Faults()
    put = Operation("dynamodb", "PutItem", "json")
    answers: list[Any] = []
    with faults.fixed("dynamodb:PutItem", error_code="InternalServerError", latency=30):
        held = threading.Thread(target=lambda: answers.append(faults.apply(put)))
        started = time.monotonic()
        held.start()
        time.sleep(0.1)
    held.join(5)

    # Lifted before the latency ended: the request goes through, as a recovered network's would.
    assert answers == [None]
    assert time.monotonic() - started < 5


def test_seeded_faults_repeat_with_the_same_seed() -> None:
    def decisions(seed: int) -> list[str | None]:
        faults = Faults()
        put = Operation("dynamodb", "PutItem", "json")
        with faults.seeded("dynamodb:PutItem", rate=0.5, faults=DYNAMODB_WRITE_FAULTS, seed=seed):
            outcomes = [faults.apply(put) for _ in range(40)]
        return [outcome.label if outcome else None for outcome in outcomes]

    first = decisions(7)

    assert first == decisions(7)
    assert 0 < sum(label is not None for label in first) < 40


def test_fault_arguments_are_checked() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="error_code, a latency"):
        faults.fixed("dynamodb:PutItem", error_code=None).__enter__()
    with pytest.raises(ValueError, match="service:Operation"):
        faults.fixed("PutItem", error_code="X").__enter__()
    with pytest.raises(ValueError, match="rate"):
        faults.seeded("dynamodb:PutItem", rate=2, faults=[InjectedFault("X")], seed=0).__enter__()
