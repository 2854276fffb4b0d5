"""``AuditPipeline.add_publisher(fn)``: a producer in one line, in the pipeline's stack or in
another one, with the client shipped as a Lambda layer that runs on what Lambda gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_

from audit_stack import AuditPipeline
from audit_stack.construct.functions import RUNTIME
from audit_stack.construct.publisher_layer import LAYER_ID, stage_client
from audit_stack.lambda_code import contract
from tests.cdk_app import new_app

pytestmark = pytest.mark.synth

_PRODUCER_CODE = "def handler(event, context):\n    return None\n"


def _producer(stack: cdk.Stack) -> lambda_.Function:
    return lambda_.Function(
        stack,
        "Producer",
        runtime=RUNTIME,
        handler="index.handler",
        code=lambda_.Code.from_inline(_PRODUCER_CODE),
    )


@pytest.fixture(scope="module")
def assembly() -> cdk.cx_api.CloudAssembly:
    """The pipeline in stack Audit with a producer of its own, and a producer in stack Billing."""
    app = new_app()
    audit_stack = cdk.Stack(app, "Audit")
    pipeline = AuditPipeline(audit_stack, "Audit")
    pipeline.add_publisher(_producer(audit_stack))
    pipeline.add_publisher(_producer(cdk.Stack(app, "Billing")))
    return app.synth()  # raises on a dependency cycle between the two stacks


def _template(assembly: cdk.cx_api.CloudAssembly, stack: str) -> dict[str, Any]:
    template: dict[str, Any] = assembly.get_stack_by_name(stack).template
    return template


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _producer_function(template: dict[str, Any]) -> dict[str, Any]:
    (function,) = [
        f
        for f in _resources(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "index.handler"
    ]
    return function


def _functions_used(node: Any) -> list[str]:
    """Every intrinsic function name (``Fn::...``) in a template fragment."""
    if isinstance(node, dict):
        return [
            *(k for k in node if k.startswith("Fn::")),
            *(f for v in node.values() for f in _functions_used(v)),
        ]
    if isinstance(node, list):
        return [f for v in node for f in _functions_used(v)]
    return []


def _role_actions(template: dict[str, Any], role_id: str) -> set[str]:
    actions: set[str] = set()
    for policy in _resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                listed = statement["Action"]
                actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def test_a_producer_in_another_stack_depends_on_the_pipeline_and_not_the_reverse(
    assembly: cdk.cx_api.CloudAssembly,
) -> None:
    billing = assembly.get_stack_by_name("Billing")
    audit = assembly.get_stack_by_name("Audit")
    stacks = {"Audit", "Billing"}
    assert [d.id for d in billing.dependencies if d.id in stacks] == ["Audit"]
    assert [d.id for d in audit.dependencies if d.id in stacks] == []
    assert not {"Fn::ImportValue", "Fn::GetStackOutput"} & set(_functions_used(audit.template))


@pytest.mark.parametrize("stack", ["Audit", "Billing"])
def test_add_publisher_sets_the_clients_environment_grants_and_layer(
    assembly: cdk.cx_api.CloudAssembly, stack: str
) -> None:
    template = _template(assembly, stack)
    function = _producer_function(template)["Properties"]
    variables = function["Environment"]["Variables"]
    assert set(variables) == {
        contract.ENV_TOPIC_ARN,
        contract.ENV_PSEUDONYM_SECRET_ARN,
        contract.ENV_EVENT_CATALOGUE,
    }
    if stack == "Billing":  # read from the pipeline's stack (an export or a stack output)
        assert all(
            {"Fn::ImportValue", "Fn::GetStackOutput"} & set(value)
            for name, value in variables.items()
            if name != contract.ENV_EVENT_CATALOGUE  # a literal: the catalogue's JSON
        )
    (layer_id,) = [
        k for k in _resources(template, "AWS::Lambda::LayerVersion") if k.startswith(LAYER_ID)
    ]
    assert function["Layers"] == [{"Ref": layer_id}]
    role_id = function["Role"]["Fn::GetAtt"][0]
    assert {"sns:Publish", "secretsmanager:GetSecretValue"} <= _role_actions(template, role_id)


def test_the_secret_lets_the_same_stacks_producer_by_arn_and_the_other_by_its_tag(
    assembly: cdk.cx_api.CloudAssembly,
) -> None:
    audit = _template(assembly, "Audit")
    (deny,) = [
        statement
        for policy in _resources(audit, "AWS::SecretsManager::ResourcePolicy").values()
        for statement in policy["Properties"]["ResourcePolicy"]["Statement"]
        if statement["Sid"] == "OnlyGrantedPrincipalsReadThePseudonymKey"
    ]
    readers = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    producer_role = _producer_function(audit)["Properties"]["Role"]
    assert producer_role in readers
    ((tag_condition, tag_value),) = deny["Condition"]["StringNotEquals"].items()
    tag_key = tag_condition.removeprefix("aws:PrincipalTag/")
    assert tag_key.startswith("audit-pipeline-lookup:")

    billing = _template(assembly, "Billing")
    role_id = _producer_function(billing)["Properties"]["Role"]["Fn::GetAtt"][0]
    tags = billing["Resources"][role_id]["Properties"]["Tags"]
    assert {"Key": tag_key, "Value": tag_value} in tags
    # Only the producer that needs it carries the tag.
    audit_role_id = producer_role["Fn::GetAtt"][0]
    assert "Tags" not in audit["Resources"][audit_role_id]["Properties"]


def test_the_layer_is_the_same_staged_folder_cdk_copies(
    assembly: cdk.cx_api.CloudAssembly, tmp_path: Path
) -> None:
    manifest = json.loads((Path(assembly.directory) / "Billing.assets.json").read_text())
    (asset,) = [
        Path(assembly.directory) / a["source"]["path"]
        for a in manifest["files"].values()
        if (Path(assembly.directory) / a["source"]["path"] / "python" / "audit_stack").is_dir()
    ]
    staged = stage_client(tmp_path / "staged")
    files = sorted(str(p.relative_to(staged)) for p in staged.rglob("*.py"))
    assert files == sorted(str(p.relative_to(asset)) for p in asset.rglob("*.py"))
    assert "python/audit_stack/publisher.py" in files


# Run in a Lambda-like interpreter: no site-packages, only the layer and boto3 (which the Lambda
# Python runtime provides) on the path.
_LAMBDA_LIKE_SCRIPT = textwrap.dedent(
    """
    import importlib.util, sys
    sys.path[:0] = sys.argv[1:3]
    assert importlib.util.find_spec("aws_cdk") is None
    assert importlib.util.find_spec("rich") is None
    from audit_stack import AuditPublisher

    class Sns:
        def publish(self, **request):
            self.request = request
            return {"MessageId": "m-1"}

    sns = Sns()
    publisher = AuditPublisher(
        "arn:aws:sns:eu-west-1:123456789012:audit", subject_in_clear=True, sns_client=sns
    )
    published = publisher.account_deleted("john.doe@mail.com")
    print(sns.request["TopicArn"], type(published).__name__)
    """
)


def test_the_layer_alone_publishes_in_a_lambda_like_python(tmp_path: Path) -> None:
    layer = stage_client(tmp_path / "layer") / "python"
    runtime = tmp_path / "runtime"  # what the Lambda runtime ships besides the stdlib
    runtime.mkdir()
    for name in ("boto3", "botocore", "jmespath", "dateutil", "s3transfer", "urllib3", "six"):
        module = __import__(name)
        source = Path(module.__file__ or "")
        origin = source.parent if source.name == "__init__.py" else source
        (runtime / origin.name).symlink_to(origin)
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _LAMBDA_LIKE_SCRIPT, str(layer), str(runtime)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["arn:aws:sns:eu-west-1:123456789012:audit", "PublishedEvent"]


def test_the_topic_lets_the_same_stacks_producer_by_arn_and_the_other_by_its_tag(
    assembly: cdk.cx_api.CloudAssembly,
) -> None:
    """The topic's publish deny names a producer of another stack by a tag on its role, not by
    its ARN, which would make the pipeline's stack depend on the producer's (a cycle)."""
    audit = _template(assembly, "Audit")
    (deny,) = [
        statement
        for policy in _resources(audit, "AWS::SNS::TopicPolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "OnlyGrantedPrincipalsPublish"
    ]
    producer_role = _producer_function(audit)["Properties"]["Role"]
    assert producer_role in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    ((tag_condition, tag_value),) = deny["Condition"]["StringNotEquals"].items()
    tag_key = tag_condition.removeprefix("aws:PrincipalTag/")
    assert tag_key.startswith("audit-pipeline-publish:")

    billing = _template(assembly, "Billing")
    role_id = _producer_function(billing)["Properties"]["Role"]["Fn::GetAtt"][0]
    assert {"Key": tag_key, "Value": tag_value} in billing["Resources"][role_id]["Properties"][
        "Tags"
    ]


@pytest.mark.parametrize(
    "runtime",
    [
        lambda_.Runtime.PYTHON_3_11,
        lambda_.Runtime.PYTHON_3_12,
        lambda_.Runtime.PYTHON_3_13,
        RUNTIME,
    ],
    ids=lambda runtime: str(runtime.name),
)
def test_a_function_on_any_python_the_client_runs_on_takes_the_layer(
    runtime: lambda_.Runtime,
) -> None:
    # An app's existing function keeps its runtime (the consumer app's is python3.12).
    app = new_app()
    stack = cdk.Stack(app, "Shop")
    producer = lambda_.Function(
        stack,
        "Producer",
        runtime=runtime,
        handler="index.handler",
        code=lambda_.Code.from_inline(_PRODUCER_CODE),
    )
    AuditPipeline(stack, "Audit").add_publisher(producer)

    function = _producer_function(_template(app.synth(), "Shop"))
    assert function["Properties"]["Runtime"] == runtime.name
    assert len(function["Properties"]["Layers"]) == 1


def test_a_function_on_a_python_older_than_the_clients_is_refused_naming_its_runtime() -> None:
    stack = cdk.Stack(new_app(), "Shop")
    producer = lambda_.Function(
        stack,
        "Producer",
        runtime=lambda_.Runtime.PYTHON_3_10,
        handler="index.handler",
        code=lambda_.Code.from_inline(_PRODUCER_CODE),
    )

    with pytest.raises(RuntimeError, match=r"python3\.10 is not in \[python3\.11, python3\.12"):
        AuditPipeline(stack, "Audit").add_publisher(producer)
