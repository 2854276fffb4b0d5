"""`audit --stack NAME --pipeline ID` on a consumer's stack with two pipelines and no outputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit_stack.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from audit_stack.local import LocalAuditPipeline
from tests.cli.conftest import OPERATOR_ENFORCE_IAM, Audit

EMAIL = "cli.tenant@mail.com"


@pytest.fixture(scope="module")
def pipeline(two_pipelines_assembly: Path) -> Iterator[LocalAuditPipeline]:
    """MyStack on the emulator (its own selection does not matter to the CLI)."""
    with LocalAuditPipeline(
        two_pipelines_assembly, pipeline="Audit", enforce_iam=OPERATOR_ENFORCE_IAM
    ) as running:
        yield running


def test_the_emulator_answers_get_template_with_the_synthesized_template(
    pipeline: LocalAuditPipeline,
) -> None:
    body = pipeline.client("cloudformation").get_template(StackName="MyStack")["TemplateBody"]
    assert json.loads(json.dumps(body)) == pipeline.template


def test_each_pipeline_is_operated_by_its_id(pipeline: LocalAuditPipeline, audit: Audit) -> None:
    published = audit(
        "--stack", "MyStack", "--pipeline", "Tenants/Audit", "--json", "delete-account", EMAIL
    )
    assert published.exit_code == EXIT_OK, published.stderr
    pipeline.run_until_idle()

    tenants = audit("--stack", "MyStack", "--pipeline", "Tenants/Audit", "--json", "trail", EMAIL)
    assert tenants.exit_code == EXIT_OK, tenants.stderr
    assert [event["event_id"] for event in tenants.json()["events"]] == [
        published.json()["event_id"]
    ]
    top_level = audit("--stack", "MyStack", "--pipeline", "Audit", "--json", "trail", EMAIL)
    assert top_level.exit_code == EXIT_OK, top_level.stderr
    assert top_level.json()["events"] == []


def test_status_reports_the_chosen_pipeline_and_only_its_alarms(
    pipeline: LocalAuditPipeline, audit: Audit
) -> None:
    run = audit("--stack", "MyStack", "--pipeline", "Tenants/Audit", "--json", "status")
    report = run.json()
    assert (report["stack"], report["pipeline"]) == ("MyStack", "Tenants/Audit")
    assert len(report["alarms"]) == 14
    assert all(alarm["logical_id"].startswith("TenantsAudit") for alarm in report["alarms"])


def test_the_emulators_only_stack_is_used_when_no_stack_is_named(audit: Audit) -> None:
    run = audit("--pipeline", "Audit", "--json", "status")
    assert run.exit_code == EXIT_OK, run.stderr
    assert run.json()["stack"] == "MyStack"


def test_two_pipelines_without_a_choice_is_a_usage_error_listing_them(audit: Audit) -> None:
    run = audit("--stack", "MyStack", "trail", EMAIL)
    assert run.exit_code == EXIT_USAGE
    assert "stack 'MyStack' holds 2 AuditPipelines: pick one of Audit, Tenants/Audit" in run.stderr


def test_an_unknown_pipeline_is_a_usage_error_listing_the_choices(audit: Audit) -> None:
    run = audit("--stack", "MyStack", "--pipeline", "Billing", "status")
    assert run.exit_code == EXIT_USAGE
    assert "no AuditPipeline 'Billing'; pipelines: Audit, Tenants/Audit" in run.stderr


def test_a_stack_the_emulator_does_not_run_is_not_found(audit: Audit) -> None:
    run = audit("--stack", "Unrelated", "status")
    assert run.exit_code == EXIT_ERROR
    assert "stack 'Unrelated' not found" in run.stderr
