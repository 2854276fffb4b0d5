"""Finding AuditPipelines in a template by the marks the construct adds, and choosing one."""

from __future__ import annotations

from typing import Any

import pytest

from audit_stack.discovery import (
    PipelineNotFoundError,
    find_pipelines,
    function_environment,
    function_role,
    select_pipeline,
)


def _resource(resource_type: str, pipeline: str | None, role: str | None = None) -> dict[str, Any]:
    mark: dict[str, str] = {}
    if pipeline is not None:
        mark["pipeline"] = pipeline
    if role is not None:
        mark["role"] = role
    return {"Type": resource_type, "Metadata": {"AuditPipeline": mark} if mark else {}}


TEMPLATE = {
    "Resources": {
        "AuditTopic": _resource("AWS::SNS::Topic", "Audit", "topic"),
        "AuditTable": _resource("AWS::DynamoDB::Table", "Audit", "table"),
        "AuditPublisher": _resource("AWS::Lambda::Function", "Audit", "publisher"),
        "AuditRecorder": _resource("AWS::Lambda::Function", "Audit", "recorder"),
        "AuditSealer": _resource("AWS::Lambda::Function", "Audit", "sealer"),
        "AuditRole": _resource("AWS::IAM::Role", "Audit"),
        "AuditAlarmA": _resource("AWS::CloudWatch::Alarm", "Audit", "alarm"),
        "AuditAlarmB": _resource("AWS::CloudWatch::Alarm", "Audit", "alarm"),
        "TenantsAuditTopic": _resource("AWS::SNS::Topic", "Tenants/Audit", "topic"),
        "Unmarked": _resource("AWS::SNS::Topic", None),
    }
}


def test_resources_are_grouped_by_pipeline_with_their_roles() -> None:
    audit, tenants = find_pipelines(TEMPLATE)
    assert (audit.path, audit.id, tenants.path, tenants.id) == (
        "Audit",
        "Audit",
        "Tenants/Audit",
        "Audit",
    )
    assert audit.logical_id("table") == "AuditTable"
    assert audit.alarms == ("AuditAlarmA", "AuditAlarmB")
    assert "AuditRole" in audit.members and "Unmarked" not in audit.members


def test_any_function_role_is_found_without_changes_to_discovery() -> None:
    (audit, _) = find_pipelines(TEMPLATE)
    assert audit.function_roles == ("publisher", "recorder", "sealer")
    assert audit.logical_id("sealer") == "AuditSealer"


def test_a_missing_role_names_the_known_ones() -> None:
    (_, tenants) = find_pipelines(TEMPLATE)
    with pytest.raises(KeyError, match="has no 'table'; roles: topic"):
        tenants.logical_id("table")


def test_the_only_pipeline_is_chosen_without_a_name() -> None:
    only = find_pipelines({"Resources": {"T": _resource("AWS::SNS::Topic", "Audit", "topic")}})
    assert select_pipeline(only, None, where="stack S").path == "Audit"


def test_several_pipelines_without_a_name_list_the_choices() -> None:
    with pytest.raises(PipelineNotFoundError, match="pick one of Audit, Tenants/Audit"):
        select_pipeline(find_pipelines(TEMPLATE), None, where="stack MyStack")


@pytest.mark.parametrize(
    ("wanted", "path"),
    [
        ("Audit", "Audit"),
        ("Tenants/Audit", "Tenants/Audit"),
        ("MyStack/Tenants/Audit", "Tenants/Audit"),
    ],
)
def test_a_pipeline_is_named_by_its_path_or_construct_id(wanted: str, path: str) -> None:
    assert select_pipeline(find_pipelines(TEMPLATE), wanted, where="stack MyStack").path == path


def test_an_unknown_pipeline_lists_the_choices() -> None:
    with pytest.raises(PipelineNotFoundError, match="no AuditPipeline 'Billing'; pipelines: Audit"):
        select_pipeline(find_pipelines(TEMPLATE), "Billing", where="stack MyStack")


def test_a_stack_without_pipelines_says_so() -> None:
    with pytest.raises(PipelineNotFoundError, match="stack Other holds no AuditPipeline"):
        select_pipeline(find_pipelines({"Resources": {}}), None, where="stack Other")


@pytest.mark.parametrize(
    ("construct_id", "role"),
    [("SealerFunction", "sealer"), ("DigestWriterFunction", "digest-writer"), ("Sealer", "sealer")],
)
def test_a_functions_default_role_comes_from_its_construct_id(construct_id: str, role: str) -> None:
    assert function_role(construct_id) == role


def _at(path: str, resource_type: str) -> dict[str, Any]:
    return {"Type": resource_type, "Metadata": {"aws:cdk:path": path}}


def test_unmarked_pipelines_are_found_by_their_cdk_paths_even_nested() -> None:
    template: dict[str, dict[str, Any]] = {"Resources": {}}
    function = "AWS::Lambda::Function"
    for prefix in ("S/Audit", "S/Tenants/Audit"):
        name = prefix.replace("/", "")
        template["Resources"] |= {
            f"{name}Topic": _at(f"{prefix}/Topic/Resource", "AWS::SNS::Topic"),
            f"{name}Pub": _at(f"{prefix}/DeleteAccountFunction/Resource", function),
            f"{name}Rec": _at(
                f"{prefix}/RecordAuditEventFunction/Resource", "AWS::Lambda::Function"
            ),
            f"{name}Alarm": _at(f"{prefix}/RecorderErrorsAlarm/Resource", "AWS::CloudWatch::Alarm"),
        }
    template["Resources"]["Other"] = _at("S/Other/Topic/Resource", "AWS::SNS::Topic")
    audit, tenants = find_pipelines(template)
    assert (audit.path, tenants.path) == ("Audit", "Tenants/Audit")
    assert audit.roles == {
        "topic": "SAuditTopic",
        "publisher": "SAuditPub",
        "recorder": "SAuditRec",
    }
    assert tenants.alarms == ("STenantsAuditAlarm",)
    assert "Other" not in audit.members + tenants.members


def test_a_functions_environment_is_read_from_the_template_as_text() -> None:
    recorder = _resource("AWS::Lambda::Function", "Audit", "recorder")
    recorder["Properties"] = {
        "Environment": {
            "Variables": {
                "EVENT_TYPE_INDEX_SHARDS": 4,
                "TABLE_NAME": {"Ref": "Table"},
                "POWERTOOLS_SERVICE_NAME": "audit-pipeline",
            }
        }
    }
    publisher = _resource("AWS::Lambda::Function", "Audit", "publisher")
    template = {"Resources": {"Recorder": recorder, "Publisher": publisher}}
    (pipeline,) = find_pipelines(template)

    # Unresolved intrinsics have no value to read: left out, not shown as their dict.
    assert function_environment(template, pipeline, "recorder") == {
        "EVENT_TYPE_INDEX_SHARDS": "4",
        "POWERTOOLS_SERVICE_NAME": "audit-pipeline",
    }
    assert function_environment(template, pipeline, "publisher") == {}
    assert function_environment(template, pipeline, "sealer") == {}
