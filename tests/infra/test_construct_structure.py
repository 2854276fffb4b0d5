"""The construct's modules depend on each other one way: no import cycle, not even one that
only the type checker sees."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

import audit_stack.construct
from audit_stack import AuditPipeline
from audit_stack.lambda_code import contract, lambda_code_dir
from tests.cdk_app import new_app

PACKAGE = "audit_stack.construct"
FOLDER = Path(audit_stack.construct.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    """The ``audit_stack.construct`` modules ``path`` imports, TYPE_CHECKING blocks included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:
                found.update(f"{PACKAGE}.{alias.name}" for alias in node.names)
            elif node.module.startswith(f"{PACKAGE}."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(f"{PACKAGE}."))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {f"{PACKAGE}.{path.stem}": path for path in FOLDER.glob("*.py")}
    modules.pop(f"{PACKAGE}.__init__")
    return {name: _imports(path) & set(modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in visiting:
            return [*visiting[visiting.index(module) :], module]
        if module in done:
            return None
        visiting.append(module)
        for imported in sorted(graph[module]):
            if found := visit(imported):
                return found
        visiting.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        if found := visit(module):
            return found
    return None


def test_the_construct_modules_import_each_other_without_a_cycle() -> None:
    graph = _graph()

    assert f"{PACKAGE}.monitoring" in graph[f"{PACKAGE}.pipeline"]
    assert f"{PACKAGE}.pipeline" not in graph[f"{PACKAGE}.monitoring"]
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.synth
@pytest.mark.parametrize("grant", ["grant_publish", "grant_lookup"])
def test_a_user_of_another_stack_is_refused_by_name_rather_than_made_a_dependency_cycle(
    grant: str,
) -> None:
    app = new_app()
    pipeline = AuditPipeline(cdk.Stack(app, "Audit"), "Audit")
    user = iam.User(cdk.Stack(app, "Billing"), "Clerk")

    with pytest.raises(
        ValueError,
        match=f"^AuditPipeline {grant}: a grantee in another stack must be an iam.Role of that "
        r"stack \(its role is tagged\), got User$",
    ):
        getattr(pipeline, grant)(user)


@pytest.mark.synth
def test_every_deny_all_but_statement_exempts_its_principals_and_the_tagged_roles() -> None:
    app = new_app()
    audit = cdk.Stack(app, "Audit")
    pipeline = AuditPipeline(audit, "Audit")
    role = iam.Role(cdk.Stack(app, "Billing"), "Producer", assumed_by=iam.AccountRootPrincipal())
    pipeline.grant_publish(role)
    pipeline.grant_lookup(role)
    pipeline.allow_publishers(accounts=["222222222222"])

    template = Template.from_stack(audit).to_json()
    statements = {
        statement["Sid"]: statement
        for resource in template["Resources"].values()
        if resource["Type"] in {"AWS::SNS::TopicPolicy", "AWS::SecretsManager::ResourcePolicy"}
        for statement in (
            resource["Properties"].get("PolicyDocument") or resource["Properties"]["ResourcePolicy"]
        )["Statement"]
    }
    publish = statements["OnlyGrantedPrincipalsPublish"]["Condition"]
    lookup = statements["OnlyGrantedPrincipalsReadThePseudonymKey"]["Condition"]
    assert publish["StringNotEquals"]["aws:PrincipalAccount"] == ["222222222222"]
    (publish_tag,) = [key for key in publish["StringNotEquals"] if "PrincipalTag" in key]
    (lookup_tag,) = list(lookup["StringNotEquals"])
    assert publish_tag.startswith("aws:PrincipalTag/audit-pipeline-publish:")
    assert lookup_tag.startswith("aws:PrincipalTag/audit-pipeline-lookup:")
    assert "aws:PrincipalArn" in publish["ArnNotEquals"]
    assert "aws:PrincipalArn" in lookup["ArnNotEquals"]
    tags = {
        tag["Key"]
        for tag in Template.from_stack(role.stack).to_json()["Resources"][
            role.stack.get_logical_id(role.node.default_child)  # type: ignore[arg-type]
        ]["Properties"]["Tags"]
    }
    assert {
        publish_tag.removeprefix("aws:PrincipalTag/"),
        lookup_tag.removeprefix("aws:PrincipalTag/"),
    } <= tags


def _contract_env_names() -> dict[str, str]:
    """Every ``ENV_*`` of the contract: its value (the variable) -> its constant's name."""
    return {getattr(contract, name): name for name in dir(contract) if name.startswith("ENV_")}


def _names_read_from_the_environment(folder: Path) -> set[str]:
    """The contract constants the Lambda code reads environment variables by
    (``os.environ[X]``, ``os.environ.get(X)``), and any literal it reads one by."""
    found: set[str] = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            key: ast.expr | None = None
            if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                key = node.slice
            elif (
                isinstance(node, ast.Call)
                and ast.unparse(node.func) in {"os.environ.get", "os.getenv"}
                and node.args
            ):
                key = node.args[0]
            if key is not None:
                found.add(ast.unparse(key))
    return found


def test_every_function_variable_is_a_contract_name_and_the_lambda_code_reads_it_by_that_name(
    template_json: dict[str, Any],
) -> None:
    names = _contract_env_names()
    set_by_the_construct = {
        variable
        for resource in template_json["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
        for variable in resource["Properties"]["Environment"]["Variables"]
        # Powertools' and the runtime's own settings are theirs, not the pipeline's contract.
        if not variable.startswith(("POWERTOOLS_", "AWS_"))
    }
    read = _names_read_from_the_environment(Path(lambda_code_dir()) / "audit_events")

    assert set_by_the_construct <= set(names), set_by_the_construct - set(names)
    # Read by the constant, never by a string literal that could drift from it.
    assert all(not key.startswith(("'", '"')) for key in read), read
    # Each is read by its function, or from the template by the tooling (verify reads the
    # sealer's SEAL_INTERVAL_SECONDS): a variable nobody reads would be a stale copy.
    tooling = _contract_names_used_outside_the_construct()
    assert {names[variable] for variable in set_by_the_construct} <= read | tooling


def _contract_names_used_outside_the_construct() -> set[str]:
    """``contract.<NAME>`` references in audit_stack's modules other than the construct's."""
    package = Path(audit_stack.construct.__file__).resolve().parents[1]
    found: set[str] = set()
    for path in package.rglob("*.py"):
        if FOLDER in path.parents or "lambdas" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "contract":
                found.add(node.attr)
    return found
