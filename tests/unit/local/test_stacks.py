"""Several stacks of one cloud assembly: their deployment order, the cross-stack references
between them, which resources are a pipeline's data path, and what a function's path holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from audit_stack.local.deploy.context import SKIPPED_PREFIXES, SKIPPED_TYPES
from audit_stack.local.deploy.deployer import HANDLERS, data_path, imported_exports
from audit_stack.local.deploy.model import FunctionSpec
from audit_stack.local.deploy.template import (
    CloudAssembly,
    DeploymentError,
    PhysicalResource,
    Resolver,
    StackExports,
    TemplateResource,
)
from audit_stack.local.runtime.python_path import (
    LambdaLibraries,
    distribution_closure,
    link_distributions,
)

REGION = "eu-west-1"
PRODUCER: dict[str, Any] = {
    "Resources": {"Key": {"Type": "AWS::KMS::Key"}, "Skipped": {"Type": "AWS::X::Y"}},
    "Outputs": {
        "KeyArn": {
            "Value": {"Fn::GetAtt": ["Key", "Arn"]},
            "Export": {"Name": {"Fn::Sub": "${AWS::StackName}:KeyArn"}},
        },
        "KeyId": {"Value": {"Ref": "Key"}},
        "Missing": {"Value": {"Fn::GetAtt": ["Skipped", "Endpoint"]}, "Export": {"Name": "M"}},
    },
}


@pytest.fixture
def exports() -> StackExports:
    """What the stack Shared offers once deployed: its key's ARN exported, its outputs."""
    exports = StackExports(REGION)
    producer = Resolver(PRODUCER, region=REGION, account_id="1", stack_name="Shared")
    producer.deployed["Key"] = PhysicalResource("key-id", {"Arn": "arn:key"})
    producer.deployed["Skipped"] = PhysicalResource("placeholder", {"Arn": "arn:skipped"})
    exports.add_stack("Shared", PRODUCER, producer)
    return exports


def consumer(exports: StackExports) -> Resolver:
    return Resolver({}, region=REGION, account_id="1", stack_name="App", exports=exports)


def test_import_value_answers_the_export_of_a_stack_deployed_before(
    exports: StackExports,
) -> None:
    assert consumer(exports).resolve({"Fn::ImportValue": "Shared:KeyArn"}) == "arn:key"
    assert consumer(exports).resolve({"Fn::ImportValue": {"Fn::Sub": "Shared:KeyArn"}}) == (
        "arn:key"
    )


def test_get_stack_output_answers_any_output_of_a_stack_deployed_before(
    exports: StackExports,
) -> None:
    reference = {"StackName": "Shared", "OutputName": "KeyId", "Region": {"Ref": "AWS::Region"}}

    assert consumer(exports).resolve({"Fn::GetStackOutput": reference}) == "key-id"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Fn::ImportValue": "Other:Thing"}, "no stack deployed locally exports it"),
        (
            {"Fn::GetStackOutput": {"StackName": "Nope", "OutputName": "KeyId"}},
            "stack Nope is not deployed locally",
        ),
        (
            {"Fn::GetStackOutput": {"StackName": "Shared", "OutputName": "Nope"}},
            r"has no such output \(outputs: \['KeyArn', 'KeyId'\]\)",
        ),
        (
            {
                "Fn::GetStackOutput": {
                    "StackName": "Shared",
                    "OutputName": "KeyId",
                    "Region": "us-west-2",
                }
            },
            "region us-west-2 is not emulated",
        ),
        ({"Fn::ImportValue": "M"}, r"Skipped.Endpoint is not available locally"),
    ],
    ids=["unknown-export", "unknown-stack", "unknown-output", "other-region", "skipped-source"],
)
def test_a_cross_stack_reference_the_emulator_cannot_answer_is_an_error_naming_it(
    exports: StackExports, value: Any, message: str
) -> None:
    with pytest.raises(DeploymentError, match=message):
        consumer(exports).resolve(value)


def test_a_name_exported_twice_is_refused_as_cloudformation_does(exports: StackExports) -> None:
    again = Resolver(PRODUCER, region=REGION, account_id="1", stack_name="Shared")
    again.deployed["Key"] = PhysicalResource("key-id", {"Arn": "arn:key"})
    again.deployed["Skipped"] = PhysicalResource("placeholder")

    with pytest.raises(DeploymentError, match="'Shared:KeyArn' of stack Again is already"):
        exports.add_stack("Again", PRODUCER, again)


def write_manifest(directory: Path, dependencies: dict[str, list[str]]) -> Path:
    """A cloud assembly of empty stacks with these stack dependencies (and an asset manifest
    each, which the manifest also lists as a dependency)."""
    artifacts: dict[str, Any] = {}
    for name, needs in dependencies.items():
        (directory / f"{name}.template.json").write_text(json.dumps({"Resources": {}}))
        (directory / f"{name}.assets.json").write_text(json.dumps({"files": {}}))
        artifacts[f"{name}.assets"] = {
            "type": "cdk:asset-manifest",
            "properties": {"file": f"{name}.assets.json"},
        }
        artifacts[name] = {
            "type": "aws:cloudformation:stack",
            "properties": {"templateFile": f"{name}.template.json"},
            "dependencies": [*needs, f"{name}.assets"],
        }
    (directory / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))
    return directory


def test_the_stacks_a_stack_depends_on_come_first_each_after_its_own(tmp_path: Path) -> None:
    directory = write_manifest(
        tmp_path,
        {"App": ["Network", "Shared"], "Shared": ["Network"], "Network": [], "Other": []},
    )

    assert CloudAssembly(directory, "App").dependency_stacks == ["Network", "Shared"]
    assert CloudAssembly(directory, "Network").dependency_stacks == []


def test_a_cycle_between_stacks_is_an_error_showing_it(tmp_path: Path) -> None:
    directory = write_manifest(tmp_path, {"A": ["B"], "B": ["A"]})

    with pytest.raises(DeploymentError, match="A -> B -> A"):
        CloudAssembly(directory, "A")


def resource(logical_id: str, kind: str, properties: Any = None, **metadata: Any) -> Any:
    return TemplateResource(logical_id, kind, properties or {}, (), None, metadata)


def test_the_data_path_is_what_a_pipeline_marks_and_what_that_refers_to() -> None:
    mark = {"AuditPipeline": {"pipeline": "Audit", "role": "topic"}}
    resources = [
        resource("Topic", "AWS::SNS::Topic", {"KmsMasterKeyId": {"Ref": "Key"}}, **mark),
        resource("Key", "AWS::KMS::Key", {"KeyPolicy": {"Principal": {"Ref": "UserRole"}}}),
        resource("UserRole", "AWS::IAM::Role", {"Policy": {"Ref": "UserBucket"}}),
        resource("UserBucket", "AWS::S3::Bucket"),
        resource("UserMachine", "AWS::StepFunctions::StateMachine"),
    ]

    # The role is reached, not followed: it names the user's bucket, which the pipeline never uses.
    assert data_path(resources) == {"Topic", "Key", "UserRole"}


def test_without_any_pipeline_the_data_path_is_the_functions_and_what_they_use() -> None:
    resources = [
        resource("Fn", "AWS::Lambda::Function", {"Env": {"Fn::GetAtt": ["Machine", "Arn"]}}),
        resource("Machine", "AWS::StepFunctions::StateMachine"),
        resource("Other", "AWS::StepFunctions::StateMachine"),
    ]

    assert data_path(resources, pipelines_deployed=False) == {"Fn", "Machine"}
    # Beside a pipeline (in another stack), the functions are the app's own: off the data path.
    assert data_path(resources) == set()


def test_a_stacks_exports_that_a_data_path_imports_are_on_its_data_path_too() -> None:
    mark = {"AuditPipeline": {"pipeline": "Audit", "role": "topic"}}
    app = [
        resource("Topic", "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::ImportValue": "K"}}, **mark),
        resource("Bucket", "AWS::S3::Bucket", {"Tags": [{"Fn::ImportValue": "Unused"}]}),
    ]

    assert imported_exports(app, data_path(app)) == {"K"}
    shared = [resource("Key", "AWS::KMS::Key"), resource("Layer", "AWS::X::Y")]
    assert data_path(shared, ["Key"]) == {"Key"}


def test_the_runtime_libraries_are_the_sdk_and_its_dependencies_only(tmp_path: Path) -> None:
    names = {
        distribution.metadata["Name"].lower()
        for distribution in distribution_closure(["boto3", "python-dateutil"])
    }

    assert names == {
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "python-dateutil",
        "six",
        "urllib3",
    }
    folder = link_distributions(tmp_path / "runtime", distribution_closure(["six"]))
    assert sorted(
        path.name for path in folder.iterdir() if not path.name.endswith("dist-info")
    ) == ["six.py"]
    assert (folder / "six.py").is_symlink()


def test_the_powertools_stand_in_leaves_out_the_libraries_extras_require() -> None:
    names = {
        distribution.metadata["Name"].lower().replace("_", "-")
        for distribution in distribution_closure(["aws-lambda-powertools"])
    }

    assert "aws-lambda-powertools" in names
    assert names.isdisjoint({"pydantic", "aws-xray-sdk", "cryptography", "fastjsonschema"})


def test_a_functions_path_is_its_layers_then_powertools_then_the_runtime(tmp_path: Path) -> None:
    spec = FunctionSpec(
        "Fn",
        "fn",
        "arn",
        "index.handler",
        "python3.14",
        tmp_path,
        {},
        3,
        128,
        "g",
        "Text",
        None,
        None,
        layer_dirs=(tmp_path / "layer" / "python",),
        powertools_layer=True,
    )
    libraries = LambdaLibraries()
    try:
        path = libraries.python_path(spec)
        runtime = {item.name for item in libraries.runtime_dir.iterdir()}
        powertools = {item.name for item in libraries.powertools_dir.iterdir()}
    finally:
        libraries.close()

    assert path == [
        str(tmp_path / "layer" / "python"),
        str(libraries.powertools_dir),
        str(libraries.runtime_dir),
    ]
    assert {"boto3", "botocore", "dateutil", "six.py"} <= runtime
    assert not {"moto", "requests", "audit_stack", "aws_lambda_powertools"} & runtime
    assert {"aws_lambda_powertools", "jmespath", "typing_extensions.py"} <= powertools
    # What the published layer also ships and the functions import (the validation utility's).
    assert "fastjsonschema" in powertools
    assert not {"pydantic", "moto", "cryptography"} & powertools
    assert not libraries.runtime_dir.exists()


def test_the_emulator_document_names_every_type_it_runs_or_skips() -> None:
    document = (Path(__file__).resolve().parents[3] / "docs" / "EMULATOR.md").read_text()

    named = [*HANDLERS, *SKIPPED_TYPES, *(f"{prefix}*" for prefix in SKIPPED_PREFIXES)]
    assert [kind for kind in named if f"`{kind}`" not in document] == []
