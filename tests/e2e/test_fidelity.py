"""The emulator fails like AWS does: throttling, retention, payload limits, the checks of
CreateFunction and CreateEventSourceMapping, dead workers, shutdown with work in flight, APIs it
does not emulate, and faults injected into event-source invocations."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from audit_stack.local import DeploymentError, FunctionInvocationError, LocalAuditPipeline
from tests.e2e.probe import (
    child_processes,
    in_flight,
    messages_in,
    probe_function,
    send,
    sqs_fed_probe,
    write_assembly,
)

pytestmark = pytest.mark.e2e

MB = 1024 * 1024


@pytest.fixture
def probe(tmp_path: Path) -> Any:
    # Large payloads take a while to pass through a loaded machine: not the 1 s default.
    directory = write_assembly(tmp_path / "probe.out", {"Probe": probe_function(Timeout=20)}, {})
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        yield pipeline


# -- event-source mappings ---------------------------------------------------------------------


def test_throttled_batch_is_retried_until_the_function_is_free_and_never_dead_lettered(
    tmp_path: Path,
) -> None:
    directory = sqs_fed_probe(
        tmp_path,
        function={"ReservedConcurrentExecutions": 1, "Timeout": 3},
        max_receive_count=1,
        BatchSize=1,
        ScalingConfig={"MaximumConcurrency": 2},
    )
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        with pipeline.event_sources_paused():
            send(pipeline, ["0.5", "0.5"])
        pipeline.run_until_idle()

        invocations = pipeline.invocations("Probe")
        assert [call.succeeded for call in invocations] == [True, True]
        # Each message was received once: the throttled batch waited, it was not received again.
        assert [
            call.event["Records"][0]["attributes"]["ApproximateReceiveCount"]
            for call in invocations
        ] == ["1", "1"]
        assert messages_in(pipeline, "DeadLetterQueueUrl") == 0


def test_throttle_injected_into_event_source_invocations_delays_the_batch_without_a_receive(
    tmp_path: Path,
) -> None:
    directory = sqs_fed_probe(tmp_path, max_receive_count=1)
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        with pipeline.inject_fault(
            "lambda:Invoke", error_code="TooManyRequestsException", function="Probe"
        ):
            send(pipeline, ["0"])
            pipeline.wait_until(lambda: in_flight(pipeline) == 1, 10, "the batch is received")
            time.sleep(0.3)  # a few throttled attempts
            assert pipeline.invocations("Probe") == []
        pipeline.run_until_idle()

        (invocation,) = pipeline.invocations("Probe")
        assert invocation.succeeded
        assert messages_in(pipeline, "DeadLetterQueueUrl") == 0


def test_injected_invoke_error_fails_the_event_source_batch_of_that_function_only(
    tmp_path: Path,
) -> None:
    directory = sqs_fed_probe(tmp_path, max_receive_count=1)
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        with pipeline.inject_fault(
            "lambda:Invoke", error_code="ServiceException", function="Probe"
        ):
            send(pipeline, ["0"])
            pipeline.run_until_idle()

        assert pipeline.invocations("Probe") == []
        assert messages_in(pipeline, "DeadLetterQueueUrl") == 1


def test_messages_past_the_queues_retention_are_deleted_not_dead_lettered(tmp_path: Path) -> None:
    directory = sqs_fed_probe(tmp_path, queue={"MessageRetentionPeriod": 60}, max_receive_count=1)
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        with pipeline.event_sources_paused():
            send(pipeline, ["0"])
            pipeline.advance_time(61)
        pipeline.run_until_idle()

        assert pipeline.invocations("Probe") == []
        assert messages_in(pipeline, "QueueUrl") == 0
        assert messages_in(pipeline, "DeadLetterQueueUrl") == 0


def test_messages_within_retention_are_still_delivered(tmp_path: Path) -> None:
    directory = sqs_fed_probe(tmp_path, queue={"MessageRetentionPeriod": 60})
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        with pipeline.event_sources_paused():
            send(pipeline, ["0"])
            pipeline.advance_time(50)
        pipeline.run_until_idle()

        assert len(pipeline.invocations("Probe")) == 1


@pytest.mark.parametrize("window", [0, 2], ids=["no-window", "window"])
def test_a_batch_never_exceeds_lambdas_six_mb_payload(tmp_path: Path, window: int) -> None:
    """ "The maximum payload size for an SQS event source batch is 6 MB" (invocation payload
    quota, docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): ten messages of
    900 KB go in batches of at most six, every one recorded once."""
    directory = sqs_fed_probe(
        tmp_path, function={"Timeout": 20}, BatchSize=10, MaximumBatchingWindowInSeconds=window
    )
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        with pipeline.event_sources_paused():
            for _ in range(10):  # one at a time: a SendMessageBatch holds at most 1 MiB
                pipeline.client("sqs").send_message(
                    QueueUrl=pipeline.outputs["QueueUrl"], MessageBody="0" + " " * 900_000
                )
        pipeline.run_until_idle()

        batches = [invocation.event["Records"] for invocation in pipeline.invocations("Probe")]
        assert all(len(json.dumps({"Records": batch})) <= 6 * MB for batch in batches)
        assert max(len(batch) for batch in batches) == 6
        assert sum(len(batch) for batch in batches) == 10
        assert messages_in(pipeline, "QueueUrl") == 0


def test_oversized_function_response_fails_the_batch_instead_of_deleting_it(
    tmp_path: Path,
) -> None:
    directory = sqs_fed_probe(tmp_path, function={"Timeout": 20}, max_receive_count=1)
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        send(pipeline, [f"respond:{7 * MB}"])
        pipeline.run_until_idle()

        (invocation,) = pipeline.invocations("Probe")
        assert invocation.error is not None
        assert invocation.error["errorType"] == "Function.ResponseSizeTooLarge"
        assert messages_in(pipeline, "DeadLetterQueueUrl") == 1


def test_pausing_event_sources_ends_a_batching_window_at_once(tmp_path: Path) -> None:
    directory = sqs_fed_probe(tmp_path, BatchSize=20, MaximumBatchingWindowInSeconds=60)
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        send(pipeline, ["0"])
        # Received: the window of 60 s is now gathering more.
        pipeline.wait_until(
            lambda: (
                pipeline.client("sqs").get_queue_attributes(
                    QueueUrl=pipeline.outputs["QueueUrl"],
                    AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
                == "1"
            ),
            10,
            "the first message is received",
        )
        started = time.monotonic()
        with pipeline.event_sources_paused():
            paused_after = time.monotonic() - started
        pipeline.run_until_idle()

        assert paused_after < 5
        (invocation,) = pipeline.invocations("Probe")
        assert len(invocation.event["Records"]) == 1


@pytest.mark.parametrize(
    ("function", "queue", "mapping", "message"),
    [
        ({"Timeout": 60}, {}, {}, r"visibility timeout \(30 s\) is less than the function timeout"),
        ({}, {}, {"BatchSize": 20}, "BatchSize 20 over 10 needs MaximumBatchingWindowInSeconds"),
        ({}, {}, {"ScalingConfig": {"MaximumConcurrency": 1}}, "MaximumConcurrency 1"),
        ({}, {}, {"MaximumBatchingWindowInSeconds": 301}, "MaximumBatchingWindowInSeconds 301"),
        (
            {"Environment": {"Variables": {"AWS_REGION": "eu-west-1", "MINE": "1"}}},
            {},
            {},
            "reserved key\\(s\\) AWS_REGION",
        ),
        ({"Timeout": 901}, {"VisibilityTimeout": 999}, {}, "Timeout 901 must be between 1 and 900"),
        ({"MemorySize": 64}, {}, {}, "MemorySize 64 must be between 128 and 10240"),
        ({"MemorySize": 10_241}, {}, {}, "MemorySize 10241 must be between 128 and 10240"),
        (
            {"Environment": {"Variables": {"BIG": "x" * 4090}}},
            {},
            {},
            "Environment.Variables take 4100 bytes; Lambda allows at most 4096",
        ),
        (
            {},
            {"FifoQueue": True},
            {"BatchSize": 20, "MaximumBatchingWindowInSeconds": 5},
            "FIFO queue as an event source is not emulated.*; BatchSize 20 must be at most 10 "
            "for a FIFO queue; MaximumBatchingWindowInSeconds is not supported for a FIFO queue",
        ),
    ],
    ids=[
        "visibility",
        "batch-size",
        "concurrency",
        "window",
        "reserved-env",
        "timeout",
        "memory-low",
        "memory-high",
        "environment-size",
        "fifo-batch",
    ],
)
def test_deployment_refuses_what_lambda_refuses(
    tmp_path: Path,
    function: dict[str, Any],
    queue: dict[str, Any],
    mapping: dict[str, Any],
    message: str,
) -> None:
    directory = sqs_fed_probe(tmp_path, function=function, queue=queue, **mapping)
    children = child_processes()

    with pytest.raises(DeploymentError, match=message):
        LocalAuditPipeline(directory, "ProbeStack").start()

    assert child_processes() <= children


def test_template_values_of_unreserved_variables_win_and_lambdas_own_are_set(
    tmp_path: Path,
) -> None:
    """Lambda reserves some keys and sets others a function may change (TZ, LANG, PATH: see
    docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime,
    "reserved" and "unreserved" environment variables); an on-demand environment says so."""
    variables = {"TZ": "Europe/Paris", "LANG": "fr_FR.UTF-8", "PATH": "/opt/bin:/usr/bin"}
    directory = write_assembly(
        tmp_path / "probe.out",
        {"Probe": probe_function(Timeout=20, Environment={"Variables": variables})},
        {},
    )
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        environment = pipeline.invoke("Probe", {})["env"]

    assert {key: environment[key] for key in variables} == variables
    assert environment["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"


def test_mapping_disabled_by_the_string_false_receives_nothing(tmp_path: Path) -> None:
    directory = sqs_fed_probe(tmp_path, Enabled="false")
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        send(pipeline, ["0"])

        with pytest.raises(TimeoutError, match="event source paused"):
            pipeline.run_until_idle(timeout=1)
        assert pipeline.invocations("Probe") == []


# -- Lambda ------------------------------------------------------------------------------------


def test_request_and_response_payload_limits(probe: LocalAuditPipeline) -> None:
    client = probe.client("lambda")
    name = probe.function_name("Probe")

    for invocation_type, size in (("RequestResponse", 6 * MB + 1), ("Event", MB + 1)):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            client.invoke(
                FunctionName=name,
                InvocationType=invocation_type,
                Payload=b'{"pad": "' + b"x" * size + b'"}',
            )
        assert raised.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    with pytest.raises(FunctionInvocationError) as too_large:
        probe.invoke("Probe", {"respond_bytes": 6 * MB + 1})
    assert too_large.value.error_type == "Function.ResponseSizeTooLarge"
    # Below the limits both work.
    assert probe.invoke("Probe", {"pad": "x" * MB})["inits"] == 1
    assert len(probe.invoke("Probe", {"respond_bytes": MB})) == MB


def _zombie_or_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def test_idle_worker_that_died_is_replaced_not_used(probe: LocalAuditPipeline) -> None:
    first = probe.invoke("Probe", {})
    os.kill(first["pid"], signal.SIGKILL)
    # A process's death is no emulator event (nothing would wake wait_until): poll /proc.
    deadline = time.monotonic() + 10
    while not _zombie_or_gone(first["pid"]):
        assert time.monotonic() < deadline, "the worker is still alive 10 s after SIGKILL"
        time.sleep(0.01)

    second = probe.invoke("Probe", {})

    assert second["pid"] != first["pid"]
    assert second["inits"] == 1


def test_unsupported_api_answers_a_uniform_not_emulated_error(probe: LocalAuditPipeline) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        probe.client("lambda").get_function(FunctionName=probe.function_name("Probe"))

    error = raised.value.response["Error"]
    assert error["Code"] == "NotImplemented"
    assert "lambda:GetFunction is not emulated" in error["Message"]


# -- lifecycle ---------------------------------------------------------------------------------


def test_stop_with_an_invocation_in_flight_ends_within_seconds(tmp_path: Path) -> None:
    directory = sqs_fed_probe(tmp_path, function={"Timeout": 60}, queue={"VisibilityTimeout": 120})
    children = child_processes()
    pipeline = LocalAuditPipeline(directory, "ProbeStack")
    pipeline.start()
    try:
        send(pipeline, ["30"])
        pipeline.wait_until(
            lambda: len(child_processes() - children) == 1, 10, "a worker runs the batch"
        )
        time.sleep(0.5)  # the worker is inside the 30 s handler
    finally:
        started = time.monotonic()
        pipeline.stop()

    assert time.monotonic() - started < 5
    assert child_processes() <= children


def test_stop_is_safe_before_start_and_twice(tmp_path: Path) -> None:
    directory = write_assembly(tmp_path, {"Probe": probe_function()}, {})
    pipeline = LocalAuditPipeline(directory, "ProbeStack")

    pipeline.stop()
    with pipeline:
        assert pipeline.invoke("Probe", {})["inits"] == 1
    pipeline.stop()


def _run_up(directory: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "audit_stack.local",
            "up",
            "--assembly",
            str(directory),
            "--stack",
            "ProbeStack",
            "--port",
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_up_on_a_busy_port_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    directory = write_assembly(tmp_path, {"Probe": probe_function()}, {})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        completed = _run_up(directory, port)

    output = (completed.stdout + completed.stderr).strip()
    assert completed.returncode == 2
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1
    assert f"port {port} " in output and "--port" in output


def test_up_on_a_port_out_of_range_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    directory = write_assembly(tmp_path, {"Probe": probe_function()}, {})

    completed = _run_up(directory, 99999)

    output = (completed.stdout + completed.stderr).strip()
    assert completed.returncode == 2
    assert output.splitlines() == [output]
    assert "port 99999 is not a TCP port" in output and "--port" in output


def test_ctrl_c_stops_up_within_seconds(cloud_assembly: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "audit_stack.local",
            "up",
            "--assembly",
            str(cloud_assembly),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "Ctrl-C stops it" in line:
                break
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0
    assert time.monotonic() - started < 10
    assert "Stopped." in output
