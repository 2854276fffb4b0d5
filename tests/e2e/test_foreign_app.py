"""A consumer's real app on the emulator: the stacks it depends on deployed first, cross-stack
references resolved, the app's own bucket, layer and functions beside the pipeline, and each
function given only what Lambda gives it."""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit_stack.local import FunctionInvocationError, LocalAuditPipeline
from audit_stack.local.deploy.deployer import NOT_EMULATED
from tests.e2e.helpers import records_of
from tests.foreign_app import APP_STACK, SHARED_STACK, foreign_app_assembly

EMAIL = "platform.engineer@mail.com"


@pytest.fixture(scope="module")
def assembly() -> Path:
    return foreign_app_assembly()


@pytest.fixture(scope="module")
def myapp(assembly: Path) -> Iterator[LocalAuditPipeline]:
    """MyappStack on the emulator, chosen as the only stack holding an AuditPipeline."""
    with LocalAuditPipeline(assembly) as running:
        yield running


def template_functions(template: dict[str, object]) -> set[str]:
    """The intrinsic functions a template uses, by name."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key.startswith("Fn::"):
                    found.add(key)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(template)
    return found


def test_the_stacks_the_chosen_one_depends_on_are_deployed_first_from_the_same_assembly(
    assembly: Path,
) -> None:
    output = io.StringIO()
    with LocalAuditPipeline(assembly, verbose=True, output=output) as pipeline:
        assert pipeline.stacks == [SHARED_STACK, APP_STACK]
        deployment = pipeline.deployment
        assert [stack.stack_name for stack in deployment.stacks] == [SHARED_STACK, APP_STACK]
        assert deployment.dependencies[0].outputs  # the shared stack's outputs, resolved
    log = output.getvalue()
    assert log.index(f"deployed stack {SHARED_STACK}") < log.index(f"deployed stack {APP_STACK}")


def test_a_key_imported_by_export_name_and_a_layer_referenced_across_stacks_resolve(
    myapp: LocalAuditPipeline,
) -> None:
    # The app's template really holds both kinds of cross-stack reference.
    assert {"Fn::ImportValue", "Fn::GetStackOutput"} <= template_functions(myapp.template)
    shared = myapp.deployment.dependencies[0]
    (key_id,) = [
        logical_id for logical_id, kind in shared.resource_types.items() if kind == "AWS::KMS::Key"
    ]
    key_arn = shared.resources[key_id].attributes["Arn"]
    attributes = myapp.client("sns").get_topic_attributes(TopicArn=myapp.topic_arn)["Attributes"]
    assert attributes["KmsMasterKeyId"] == key_arn
    (thumbnailer,) = [spec for spec in myapp.functions if spec.construct_path == "Thumbnailer"]
    assert [folder.name for folder in thumbnailer.layer_dirs] == ["python"]
    assert (thumbnailer.layer_dirs[0] / "greeting.py").is_file()


def test_the_pipeline_records_an_event_end_to_end_beside_the_apps_own_resources(
    myapp: LocalAuditPipeline,
) -> None:
    response = myapp.invoke("publisher", {"email": EMAIL})
    myapp.run_until_idle()

    (record,) = records_of(myapp, EMAIL)
    assert record["event_id"] == {"S": response["event_id"]}


def test_the_apps_function_writes_to_the_apps_bucket_with_code_from_its_layer(
    myapp: LocalAuditPipeline,
) -> None:
    response = myapp.invoke("Thumbnailer", {"key": "cat.png"})

    assert response["greeting"] == "hello, cat.png"
    body = myapp.client("s3").get_object(Bucket=response["bucket"], Key="cat.png")["Body"].read()
    assert body == b"hello, cat.png"


def test_a_handler_importing_what_lambda_does_not_ship_fails_as_it_does_on_lambda(
    myapp: LocalAuditPipeline,
) -> None:
    # Installed beside the emulator (moto needs it), so only the function's path can hide it.
    assert importlib.util.find_spec("requests") is not None

    with pytest.raises(FunctionInvocationError) as failure:
        myapp.invoke("Reporter", {})

    assert failure.value.error_type == "Runtime.ImportModuleError"
    assert "No module named 'requests'" in failure.value.error_message


def test_what_the_emulator_does_not_create_is_listed_with_its_reason(
    myapp: LocalAuditPipeline,
) -> None:
    skipped = {
        (stack.stack_name, kind): reason
        for stack in myapp.deployment.stacks
        for _, kind, reason in stack.skipped
    }
    assert skipped[(APP_STACK, "AWS::S3::BucketPolicy")] == (
        "resource policies are not enforced by the emulator"
    )
    assert skipped[(SHARED_STACK, "AWS::KMS::Key")] == (
        "encryption at rest is not emulated (key policies are enforced)"
    )
    assert skipped[(APP_STACK, "Custom::S3AutoDeleteObjects")] == NOT_EMULATED
    # The custom resource's Node.js provider: off the data path, so listed, not refused.
    assert skipped[(APP_STACK, "AWS::Lambda::Function")].startswith("not reproduced: ")
    assert (
        "only Python functions run in the emulator" in skipped[(APP_STACK, "AWS::Lambda::Function")]
    )
    resources = myapp.client("cloudformation").list_stack_resources(StackName=APP_STACK)
    policy = next(
        summary
        for summary in resources["StackResourceSummaries"]
        if summary["ResourceType"] == "AWS::S3::BucketPolicy"
    )
    assert "not created by the local emulator" in policy["ResourceStatusReason"]
