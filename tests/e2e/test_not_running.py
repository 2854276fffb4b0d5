"""A pipeline that is not started, or is stopped, answers what needs the running emulator with
one error, ``PipelineNotRunningError`` (a RuntimeError); what the deployment produced stays
readable after the stop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from audit_stack.local import LocalAuditPipeline, PipelineNotRunningError


def _inject(pipeline: LocalAuditPipeline) -> None:
    with pipeline.inject_fault("dynamodb:BatchExecuteStatement", error_code="ThrottlingException"):
        pass


NEEDS_THE_SERVER: dict[str, Callable[[LocalAuditPipeline], Any]] = {
    "endpoint_url": lambda pipeline: pipeline.endpoint_url,
    "client": lambda pipeline: pipeline.client("sqs"),
    "inject_fault": _inject,
}
NEEDS_THE_DEPLOYMENT: dict[str, Callable[[LocalAuditPipeline], Any]] = {
    "deployment": lambda pipeline: pipeline.deployment,
    "outputs": lambda pipeline: pipeline.outputs,
    "table_name": lambda pipeline: pipeline.table_name,
    "functions": lambda pipeline: pipeline.functions,
    "sns_signer": lambda pipeline: pipeline.sns_signer,
    "signed_notification": lambda pipeline: pipeline.signed_notification("{}"),
    "enforcer": lambda pipeline: pipeline.enforcer,
    "kill_busy_workers": lambda pipeline: pipeline.kill_busy_workers("recorder"),
}


@pytest.mark.parametrize(
    "use",
    [*NEEDS_THE_SERVER.values(), *NEEDS_THE_DEPLOYMENT.values()],
    ids=[*NEEDS_THE_SERVER, *NEEDS_THE_DEPLOYMENT],
)
def test_before_start_each_use_says_the_pipeline_is_not_running(
    local_audit_assembly: Path, use: Callable[[LocalAuditPipeline], Any]
) -> None:
    pipeline = LocalAuditPipeline(local_audit_assembly)

    with pytest.raises(PipelineNotRunningError, match=r"^the pipeline is not running$"):
        use(pipeline)


def test_after_stop_the_server_is_gone_but_the_deployment_stays_readable(
    local_audit_assembly: Path,
) -> None:
    with LocalAuditPipeline(local_audit_assembly) as pipeline:
        table = pipeline.table_name

    for use in NEEDS_THE_SERVER.values():
        with pytest.raises(PipelineNotRunningError):
            use(pipeline)
    assert pipeline.table_name == table
    assert pipeline.deployment.stack_name == pipeline.stack_name
