"""The emulator and its fixture on a consumer's app: any stack name, two pipelines, no outputs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from audit_stack.local import DeploymentError, LocalAuditPipeline, PipelineNotFoundError
from audit_stack.local.__main__ import _usage
from audit_stack.local.pytest_plugin import _ini
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


class _Config:
    def __init__(self, values: dict[str, str] | None) -> None:
        self._values = values

    def getini(self, name: str) -> str:
        if self._values is None:
            raise ValueError(f"unknown ini option {name}")
        return self._values.get(name, "")


def test_the_fixture_reads_stack_and_pipeline_from_ini_options() -> None:
    config = _Config({"audit_stack": "MyStack", "audit_pipeline": "Tenants/Audit"})
    assert _ini(config, "audit_stack") == "MyStack"  # type: ignore[arg-type]
    assert _ini(config, "audit_pipeline") == "Tenants/Audit"  # type: ignore[arg-type]
    assert _ini(_Config({}), "audit_stack") is None  # type: ignore[arg-type]
    assert _ini(_Config(None), "audit_stack") is None  # type: ignore[arg-type]


def test_up_prints_the_selected_pipelines_resources_and_how_to_reach_them(
    tenants: LocalAuditPipeline,
) -> None:
    text = _usage(tenants)
    assert "Stack MyStack, pipeline Tenants/Audit (also in the stack: Audit):" in text
    for name in (tenants.table_name, tenants.queue_url, tenants.function_name("recorder")):
        assert name in text
    assert "--stack MyStack --pipeline Tenants/Audit trail john.doe@mail.com" in text
