"""The emulator itself: function workers, deployment checks, message move tasks, clean shutdown."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import botocore.exceptions
import pytest

from audit_stack.local import DeploymentError, FunctionInvocationError, LocalAuditPipeline
from audit_stack.local.deploy.deployer import NOT_EMULATED
from tests.e2e.helpers import queue_counts
from tests.e2e.probe import (
    LAMBDA_SET_VARIABLES,
    child_processes,
    probe_function,
    send,
    sqs_fed_probe,
    write_assembly,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[LocalAuditPipeline]:
    directory = write_assembly(
        tmp_path / "probe.out",
        {"Probe": probe_function()},
        {"ProbeFunctionName": {"Value": {"Ref": "Probe"}}},
    )
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        yield pipeline


def test_worker_runs_its_asset_with_the_template_environment_and_no_emulator_code(
    probe: LocalAuditPipeline,
) -> None:
    result = probe.invoke("probe", {})

    environment = result["env"]
    assert set(environment) == {"GREETING", "REGION_SEEN"} | LAMBDA_SET_VARIABLES
    assert environment["GREETING"] == "hello"
    assert environment["REGION_SEEN"] == probe.region
    assert environment["AWS_ENDPOINT_URL"] == probe.endpoint_url
    assert environment["_HANDLER"] == "probe.handler"
    asset = environment["LAMBDA_TASK_ROOT"]
    assert Path(asset).name == "asset.probe"
    assert result["cwd"] == asset
    assert result["sys_path"][0] == asset
    assert result["emulator_importable"] is False


def test_context_object_has_lambdas_attributes(probe: LocalAuditPipeline) -> None:
    context = probe.invoke("probe", {})["context"]

    name = probe.outputs["ProbeFunctionName"]
    assert context["function_name"] == name
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == (
        f"arn:aws:lambda:{probe.region}:{probe.account_id}:function:{name}"
    )
    assert context["memory_limit_in_mb"] == "512"
    assert len(context["aws_request_id"]) == 36
    assert context["log_group_name"] == f"/aws/lambda/{name}"
    assert "[$LATEST]" in context["log_stream_name"]
    assert 0 < context["remaining_ms"] <= 1000


def test_module_code_runs_once_per_warm_worker(probe: LocalAuditPipeline) -> None:
    first = probe.invoke("probe", {})
    second = probe.invoke("probe", {})

    assert first["pid"] == second["pid"]
    assert second["inits"] == 1


def test_concurrent_invocations_run_in_separate_workers(probe: LocalAuditPipeline) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: probe.invoke("probe", {"sleep": 0.3}), range(2)))

    assert results[0]["pid"] != results[1]["pid"]


def test_invocation_records_the_handlers_cpu_time_not_its_waiting(
    probe: LocalAuditPipeline,
) -> None:
    probe.invoke("probe", {"sleep": 0.3})

    invocation = probe.invocations("probe")[-1]
    assert invocation.duration_seconds >= 0.3
    assert invocation.cpu_seconds is not None
    assert 0 < invocation.cpu_seconds < 0.1


def test_handler_exception_is_an_unhandled_function_error(probe: LocalAuditPipeline) -> None:
    with pytest.raises(FunctionInvocationError) as raised:
        probe.invoke("probe", {"fail": True})

    assert raised.value.error_type == "ValueError"
    assert raised.value.error_message == "asked to fail"
    assert any("asked to fail" in line for line in probe.logs("probe"))


def test_timeout_kills_the_worker_and_the_next_invocation_starts_fresh(
    probe: LocalAuditPipeline,
) -> None:
    warm = probe.invoke("probe", {})
    started = time.monotonic()

    with pytest.raises(FunctionInvocationError) as raised:
        probe.invoke("probe", {"sleep": 30})

    assert time.monotonic() - started < 5
    assert raised.value.error_type == "Sandbox.Timedout"
    assert raised.value.error_message.endswith("Task timed out after 1.00 seconds")
    fresh = probe.invoke("probe", {})
    assert fresh["pid"] != warm["pid"]
    assert fresh["inits"] == 1


def test_a_timed_out_invocation_reports_no_cpu_time_not_its_workers_previous_one(
    probe: LocalAuditPipeline,
) -> None:
    """The worker never answered, so nothing measured the handler (the warm worker's last
    figure belongs to the invocation before)."""
    probe.invoke("probe", {})
    with pytest.raises(FunctionInvocationError):
        probe.invoke("probe", {"sleep": 30})

    warm, timed_out = probe.invocations("probe")[-2:]
    assert warm.cpu_seconds is not None
    assert timed_out.timed_out
    assert timed_out.cpu_seconds is None


def test_unknown_function_is_resource_not_found(probe: LocalAuditPipeline) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        probe.client("lambda").invoke(FunctionName="no-such-function", Payload=b"{}")

    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_batching_window_gathers_a_batch_larger_than_one_receive(tmp_path: Path) -> None:
    directory = sqs_fed_probe(tmp_path, BatchSize=25, MaximumBatchingWindowInSeconds=5)
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        with pipeline.event_sources_paused():
            send(pipeline, ["0"] * 25)
        started = time.monotonic()
        pipeline.run_until_idle()

        (invocation,) = pipeline.invocations("Probe")
        assert len(invocation.event["Records"]) == 25
        # A full batch is invoked at once, without waiting out the window.
        assert time.monotonic() - started < 5


def test_event_source_runs_at_most_maximum_concurrency_batches_at_once(tmp_path: Path) -> None:
    directory = sqs_fed_probe(tmp_path, BatchSize=1, ScalingConfig={"MaximumConcurrency": 2})
    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        with pipeline.event_sources_paused():
            send(pipeline, ["0.3"] * 6)
        pipeline.run_until_idle()

        invocations = pipeline.invocations("Probe")
        assert len(invocations) == 6
        moments = sorted(
            [(call.started_at, 1) for call in invocations]
            + [(call.started_at + call.duration_seconds, -1) for call in invocations]
        )
        running, most = 0, 0
        for _, change in moments:
            running += change
            most = max(most, running)
        assert most == 2


def test_data_path_resource_the_emulator_cannot_run_is_an_error_naming_its_type(
    tmp_path: Path,
) -> None:
    function = probe_function(Environment={"Variables": {"MACHINE": {"Ref": "Machine"}}})
    machine = {"Type": "AWS::StepFunctions::StateMachine", "Properties": {}}
    directory = write_assembly(tmp_path, {"Probe": function, "Machine": machine}, {})

    with pytest.raises(DeploymentError, match=r"AWS::StepFunctions::StateMachine are on the data"):
        LocalAuditPipeline(directory, "ProbeStack").start()


def test_a_resource_off_the_data_path_the_emulator_cannot_run_is_skipped_and_listed(
    tmp_path: Path,
) -> None:
    machine = {"Type": "AWS::StepFunctions::StateMachine", "Properties": {}}
    # A stack without pipelines: its functions and what they refer to are the data path.
    directory = write_assembly(tmp_path, {"Probe": probe_function(), "Machine": machine}, {})
    output = io.StringIO()

    with LocalAuditPipeline(directory, "ProbeStack", verbose=True, output=output) as pipeline:
        skipped = {logical_id: reason for logical_id, _, reason in pipeline.deployment.skipped}
        assert pipeline.invoke("Probe", {})["env"]["GREETING"] == "hello"

    assert skipped == {"Machine": NOT_EMULATED}
    assert f"skipped AWS::StepFunctions::StateMachine Machine: {NOT_EMULATED}" in output.getvalue()


def test_a_bucket_is_created_with_object_lock_versioning_and_its_default_retention(
    tmp_path: Path,
) -> None:
    bucket = {
        "Type": "AWS::S3::Bucket",
        "Properties": {
            "ObjectLockEnabled": True,
            "ObjectLockConfiguration": {
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": "30"}},
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": {"ServerSideEncryptionConfiguration": []},
        },
    }
    outputs = {"Bucket": {"Value": {"Ref": "Anchors"}}}
    directory = write_assembly(tmp_path, {"Probe": probe_function(), "Anchors": bucket}, outputs)

    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        s3 = pipeline.client("s3")
        name = pipeline.outputs["Bucket"]
        lock = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
        versioning = s3.get_bucket_versioning(Bucket=name)["Status"]
        not_reproduced = pipeline.deployment.not_reproduced

    assert name == name.lower() and name.startswith("probestack-anchors-")
    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("COMPLIANCE", 30)
    assert versioning == "Enabled"
    assert ("Anchors", "BucketEncryption", "encryption at rest is not emulated") in not_reproduced


def test_data_path_property_the_emulator_cannot_reproduce_is_an_error_naming_it(
    tmp_path: Path,
) -> None:
    function = probe_function(FileSystemConfigs=[{"Arn": "arn", "LocalMountPath": "/mnt/x"}])
    directory = write_assembly(tmp_path, {"Probe": function}, {})

    with pytest.raises(DeploymentError, match=r"AWS::Lambda::Function property FileSystemConfigs"):
        LocalAuditPipeline(directory, "ProbeStack").start()


def test_secret_is_generated_at_deploy_time_as_its_template_says(tmp_path: Path) -> None:
    generated = {
        "Type": "AWS::SecretsManager::Secret",
        "Properties": {
            "GenerateSecretString": {
                "PasswordLength": 48,
                "ExcludePunctuation": True,
                "IncludeSpace": False,
            }
        },
    }
    given = {"Type": "AWS::SecretsManager::Secret", "Properties": {"SecretString": "fixed"}}
    directory = write_assembly(
        tmp_path,
        {"Probe": probe_function(), "Generated": generated, "Given": given},
        {"Generated": {"Value": {"Ref": "Generated"}}, "Given": {"Value": {"Ref": "Given"}}},
    )

    with LocalAuditPipeline(directory, "ProbeStack") as pipeline:
        secrets = pipeline.client("secretsmanager")
        value = secrets.get_secret_value(SecretId=pipeline.outputs["Generated"])["SecretString"]
        fixed = secrets.get_secret_value(SecretId=pipeline.outputs["Given"])["SecretString"]

    assert pipeline.outputs["Generated"].startswith("arn:aws:secretsmanager:")
    assert len(value) == 48 and value.isalnum()
    assert fixed == "fixed"


def test_secret_option_the_emulator_cannot_reproduce_is_an_error_naming_it(
    tmp_path: Path,
) -> None:
    secret = {
        "Type": "AWS::SecretsManager::Secret",
        "Properties": {
            "GenerateSecretString": {"SecretStringTemplate": "{}", "GenerateStringKey": "k"}
        },
    }
    # On the data path (the function reads it), so refused rather than skipped.
    function = probe_function(Environment={"Variables": {"SECRET": {"Ref": "Secret"}}})
    directory = write_assembly(tmp_path, {"Probe": function, "Secret": secret}, {})

    with pytest.raises(DeploymentError, match=r"GenerateStringKey, SecretStringTemplate"):
        LocalAuditPipeline(directory, "ProbeStack").start()


def test_message_move_task_is_rate_limited_cancellable_and_one_per_source(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    pipeline = local_audit_pipeline
    sqs = pipeline.client("sqs")
    dead_letter_url = pipeline.outputs["DeadLetterQueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(
        QueueUrl=dead_letter_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=pipeline.outputs["QueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    for index in range(3):
        sqs.send_message(
            QueueUrl=dead_letter_url,
            MessageBody=f"message {index}",
            MessageAttributes={"n": {"DataType": "Number", "StringValue": str(index)}},
        )

    with pytest.raises(sqs.exceptions.UnsupportedOperation):
        sqs.start_message_move_task(SourceArn=queue_arn)  # not a dead-letter queue
    with pipeline.event_sources_paused():
        handle = sqs.start_message_move_task(
            SourceArn=dead_letter_arn, MaxNumberOfMessagesPerSecond=1
        )["TaskHandle"]
        with pytest.raises(sqs.exceptions.UnsupportedOperation):
            sqs.start_message_move_task(SourceArn=dead_letter_arn)
        pipeline.wait_until(
            lambda: queue_counts(pipeline, "QueueUrl")[0] >= 1, timeout=5, what="first move"
        )
        moved = sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
        pipeline.wait_until(
            lambda: (
                sqs.list_message_move_tasks(SourceArn=dead_letter_arn)["Results"][0]["Status"]
                == "CANCELLED"
            ),
            timeout=5,
            what="cancellation",
        )

        (task,) = sqs.list_message_move_tasks(SourceArn=dead_letter_arn, MaxResults=10)["Results"]
        assert "TaskHandle" not in task
        assert task["ApproximateNumberOfMessagesToMove"] == 3
        assert task["ApproximateNumberOfMessagesMoved"] == moved
        assert 1 <= moved < 3
        assert queue_counts(pipeline, "QueueUrl")[0] == moved
        assert queue_counts(pipeline, "DeadLetterQueueUrl")[0] == 3 - moved
        # Only the recorder's role may receive from the queue (its policy): the emulator looks.
        (received,) = pipeline.client("sqs", as_emulator=True).receive_message(
            QueueUrl=pipeline.outputs["QueueUrl"], MessageAttributeNames=["All"]
        )["Messages"]
        assert received["Body"] == "message 0"
        assert received["MessageAttributes"]["n"] == {"DataType": "Number", "StringValue": "0"}


def test_importing_the_emulator_does_not_load_aws_cdk() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, audit_stack.local, audit_stack.local.pytest_plugin; "
            "print(sorted(name for name in sys.modules if name.split('.')[0] in "
            "{'aws_cdk', 'jsii', 'constructs'}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert completed.stdout.strip() == "[]"


def _listening_addresses() -> set[str]:
    """Local addresses of this process's listening TCP sockets (from /proc/net/tcp*)."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addresses.add(fields[1])
    return addresses


class _BodyFailed(Exception):
    pass


@pytest.mark.parametrize("body_raises", [False, True], ids=["body-returns", "body-raises"])
def test_clean_shutdown_leaves_no_process_thread_or_port(
    cloud_assembly: Path, body_raises: bool
) -> None:
    threads_before = set(threading.enumerate())
    children_before = child_processes()

    with contextlib.ExitStack() as stack:
        if body_raises:
            stack.enter_context(pytest.raises(_BodyFailed))
        with LocalAuditPipeline(cloud_assembly) as pipeline:
            pipeline.invoke("publisher", {"email": "shutdown@mail.com"})
            pipeline.run_until_idle()
            port = urlparse(pipeline.endpoint_url).port
            assert port is not None
            # publisher, recorder, and the sealer the table's stream invoked
            assert len(child_processes() - children_before) == 3
            assert _listening_addresses() == {f"0100007F:{port:04X}"}  # 127.0.0.1 only
            if body_raises:
                raise _BodyFailed

    assert child_processes() <= children_before
    assert set(threading.enumerate()) == threads_before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with socket.socket() as probe_socket:
        probe_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe_socket.bind(("127.0.0.1", port))
