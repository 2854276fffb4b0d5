"""The emulator and its fixture on a consumer's app: any stack name, two pipelines, no outputs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit_stack.local import DeploymentError, LocalAuditPipeline, PipelineNotFoundError
from audit_stack.local.__main__ import usage
from tests.e2e.helpers import records_of

EMAIL = "tenant.owner@mail.com"


@pytest.fixture(scope="module")
def tenants(two_pipelines_assembly: Path) -> Iterator[LocalAuditPipeline]:
    """MyStack on the emulator, with the nested Tenants/Audit pipeline selected."""
    with LocalAuditPipeline(two_pipelines_assembly, pipeline="Tenants/Audit") as running:
        yield running


def test_the_only_stack_with_pipelines_is_chosen_and_both_pipelines_are_listed(
    tenants: LocalAuditPipeline,
) -> None:
    assert tenants.stack_name == "MyStack"
    assert tenants.pipelines == ["Audit", "Tenants/Audit"]
    assert tenants.pipeline == "Tenants/Audit"
    assert tenants.outputs == {}


def test_invoke_and_the_table_resolve_to_the_selected_pipeline(
    tenants: LocalAuditPipeline,
) -> None:
    response = tenants.invoke("publisher", {"email": EMAIL})
    tenants.run_until_idle()
    (record,) = records_of(tenants, EMAIL)
    assert record["event_id"] == {"S": response["event_id"]}
    deployment = tenants.deployment
    # The other pipeline's audit table (each pipeline also has a digest table).
    tables = [
        physical.ref
        for logical_id, physical in deployment.resources.items()
        if deployment.resource_types[logical_id] == "AWS::DynamoDB::Table"
        and "Digest" not in logical_id
    ]
    (other_table,) = [table for table in tables if table != tenants.table_name]
    ddb = tenants.client("dynamodb")
    assert ddb.scan(TableName=other_table)["Count"] == 0
    publishers = {spec.name for spec in deployment.functions if "DeleteAccount" in spec.name}
    assert len(publishers) == 2 and tenants.function_name("publisher") in publishers


def test_queues_and_topic_are_the_selected_pipelines(tenants: LocalAuditPipeline) -> None:
    assert "TenantsAudit" in tenants.topic_arn
    assert "TenantsAuditQueue" in tenants.queue_url
    assert "TenantsAuditDeadLetterQueue" in tenants.dead_letter_queue_url


def test_a_stack_with_two_pipelines_needs_a_choice_and_lists_them(
    two_pipelines_assembly: Path,
) -> None:
    with pytest.raises(PipelineNotFoundError, match="stack MyStack holds 2 AuditPipelines: pick"):
        LocalAuditPipeline(two_pipelines_assembly)
    with pytest.raises(PipelineNotFoundError, match="pipelines: Audit, Tenants/Audit"):
        LocalAuditPipeline(two_pipelines_assembly, pipeline="Billing")


def test_a_stack_without_pipelines_has_none_to_resolve_roles_in(
    two_pipelines_assembly: Path,
) -> None:
    unrelated = LocalAuditPipeline(two_pipelines_assembly, "Unrelated")
    assert (unrelated.pipelines, unrelated.pipeline) == ([], None)
    with pytest.raises(PipelineNotFoundError, match="stack Unrelated holds no AuditPipeline"):
        unrelated.resource_name("table")
    with pytest.raises(PipelineNotFoundError, match="stack Unrelated holds no AuditPipeline"):
        LocalAuditPipeline(two_pipelines_assembly, "Unrelated", pipeline="Audit")
    with pytest.raises(DeploymentError, match=r"stack 'Nope' is not in .*MyStack"):
        LocalAuditPipeline(two_pipelines_assembly, "Nope")


@pytest.mark.parametrize(
    ("ini", "expected"),
    [
        ("audit_stack = MyStack\naudit_pipeline = Tenants/Audit\n", ("MyStack", "Tenants/Audit")),
        ("", (None, None)),
    ],
    ids=["set", "unset"],
)
def test_the_fixture_reads_stack_and_pipeline_from_ini_options(
    tmp_path: Path, ini: str, expected: tuple[str | None, str | None]
) -> None:
    """A user's suite names the stack and pipeline in its pytest configuration."""
    (tmp_path / "pytest.ini").write_text(f"[pytest]\n{ini}")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["audit_stack.local.pytest_plugin"]\n')
    (tmp_path / "test_user.py").write_text(
        "def test_names(local_audit_stack_name, local_audit_pipeline_id):\n"
        f"    assert (local_audit_stack_name, local_audit_pipeline_id) == {expected!r}\n"
    )
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "1 passed" in completed.stdout


def test_up_prints_the_selected_pipelines_resources_and_how_to_reach_them(
    tenants: LocalAuditPipeline,
) -> None:
    text = usage(tenants)
    assert "Stack MyStack, pipeline Tenants/Audit (also in the stack: Audit):" in text
    for name in (tenants.table_name, tenants.queue_url, tenants.function_name("recorder")):
        assert name in text
    # The CLI asks the emulator for its stack and pipeline: no --stack, no --pipeline.
    assert f"audit --endpoint-url {tenants.endpoint_url} --region us-east-1 trail john" in text
