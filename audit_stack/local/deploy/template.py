"""Reads a stack of a CDK cloud assembly (template, assets) and resolves CloudFormation intrinsics.

Nothing here knows this project's resources: names, settings and wiring all come from the template.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit_stack.discovery import find_pipelines


class DeploymentError(Exception):
    """The template holds something the local emulator cannot reproduce faithfully."""


@dataclass(frozen=True)
class TemplateResource:
    """One entry of the template's Resources section, unresolved."""

    logical_id: str
    type: str
    properties: dict[str, Any]
    depends_on: tuple[str, ...]
    condition: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class PhysicalResource:
    """What a deployed resource answers to Ref and Fn::GetAtt."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


class CloudAssembly:
    """A synthesized cloud assembly (``cdk.out``) and one stack in it."""

    def __init__(self, directory: str | Path, stack_name: str | None = None) -> None:
        """``stack_name`` None: the only stack that holds an AuditPipeline."""
        self.directory = Path(directory).resolve()
        manifest_path = self.directory / "manifest.json"
        if not manifest_path.is_file():
            raise DeploymentError(
                f"{self.directory} is not a cloud assembly (no manifest.json): run `cdk synth`"
            )
        manifest = json.loads(manifest_path.read_text())
        artifacts: dict[str, Any] = manifest.get("artifacts", {})
        stacks = {
            name: artifact
            for name, artifact in artifacts.items()
            if artifact.get("type") == "aws:cloudformation:stack"
        }
        if stack_name is None:
            stack_name = self._only_stack_with_pipelines(stacks)
        stack = stacks.get(stack_name)
        if stack is None:
            raise DeploymentError(
                f"stack {stack_name!r} is not in {self.directory}; stacks there: {sorted(stacks)}"
            )
        self.stack_name = stack_name
        self.template: dict[str, Any] = self._template(stack)
        self._asset_sources = self._read_asset_manifests(artifacts, stack.get("dependencies", []))
        self.dependency_stacks: list[str] = _stack_dependencies(stack_name, stacks)
        """The stacks this one depends on, transitively, in the order they deploy."""

    def stack(self, stack_name: str) -> CloudAssembly:
        """Another stack of the same cloud assembly."""
        return CloudAssembly(self.directory, stack_name)

    def _template(self, stack: Mapping[str, Any]) -> dict[str, Any]:
        template: dict[str, Any] = json.loads(
            (self.directory / stack["properties"]["templateFile"]).read_text()
        )
        return template

    def _only_stack_with_pipelines(self, stacks: Mapping[str, Any]) -> str:
        with_pipelines = {
            name: [pipeline.path for pipeline in find_pipelines(self._template(stack))]
            for name, stack in stacks.items()
        }
        with_pipelines = {name: paths for name, paths in with_pipelines.items() if paths}
        if len(with_pipelines) == 1:
            return next(iter(with_pipelines))
        if not with_pipelines and len(stacks) == 1:
            return next(iter(stacks))
        if not with_pipelines:
            raise DeploymentError(
                f"no stack in {self.directory} holds an AuditPipeline; stacks there: "
                f"{sorted(stacks)}"
            )
        listed = "; ".join(
            f"{name} ({', '.join(paths)})" for name, paths in sorted(with_pipelines.items())
        )
        raise DeploymentError(
            f"{len(with_pipelines)} stacks in {self.directory} hold an AuditPipeline: name one "
            f"of {listed}"
        )

    def _read_asset_manifests(
        self, artifacts: Mapping[str, Any], dependencies: Iterable[str]
    ) -> dict[str, tuple[str, str]]:
        """objectKey -> (source path, packaging) of the file assets the stack depends on."""
        sources: dict[str, tuple[str, str]] = {}
        for name in dependencies:
            artifact = artifacts.get(name, {})
            if artifact.get("type") != "cdk:asset-manifest":
                continue
            assets = json.loads((self.directory / artifact["properties"]["file"]).read_text())
            for asset in assets.get("files", {}).values():
                source = asset["source"]
                for destination in asset.get("destinations", {}).values():
                    sources[destination["objectKey"]] = (
                        source.get("path", ""),
                        source.get("packaging", "file"),
                    )
        return sources

    def resources(self) -> list[TemplateResource]:
        """The template's resources in template order."""
        result = []
        for logical_id, body in self.template.get("Resources", {}).items():
            depends_on = body.get("DependsOn", [])
            if isinstance(depends_on, str):
                depends_on = [depends_on]
            result.append(
                TemplateResource(
                    logical_id=logical_id,
                    type=body["Type"],
                    properties=dict(body.get("Properties", {})),
                    depends_on=tuple(depends_on),
                    condition=body.get("Condition"),
                    metadata=dict(body.get("Metadata", {})),
                )
            )
        return result

    def asset_directory(self, object_key: str, *, what: str = "Code.S3Key") -> Path:
        """The folder of a Lambda code asset, from the key the template gives as Code.S3Key
        (or a layer's Content.S3Key)."""
        source = self._asset_sources.get(object_key)
        if source is None:
            raise DeploymentError(
                f"{what} {object_key!r} is not a file asset of this cloud assembly"
            )
        path, packaging = source
        folder = self.directory / path
        if packaging != "zip" or not folder.is_dir():
            # A prebuilt .zip or a Docker-built asset would have to be unpacked or built first.
            raise DeploymentError(
                f"asset {object_key} ({path}, packaging {packaging}) is not a directory asset; "
                "only directory assets (lambda.Code.from_asset(<folder>)) run locally"
            )
        return folder


def _stack_dependencies(stack_name: str, stacks: Mapping[str, Any]) -> list[str]:
    """The stack artifacts ``stack_name`` depends on (the manifest's ``dependencies``, which also
    lists asset manifests), transitively, each after its own dependencies."""
    ordered: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            cycle = " -> ".join((*visiting, name))
            raise DeploymentError(f"circular dependency between stacks: {cycle}")
        visiting.append(name)
        for dependency in stacks[name].get("dependencies", []):
            if dependency in stacks:
                visit(dependency)
        visiting.pop()
        ordered.append(name)

    visit(stack_name)
    return ordered[:-1]


@dataclass
class StackExports:
    """What deployed stacks offer to the stacks deployed after them: their exports (for
    ``Fn::ImportValue``) and their outputs (for ``Fn::GetStackOutput``)."""

    region: str
    exports: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    """stack name -> output name -> value"""
    unresolved: dict[str, str] = field(default_factory=dict)
    """"stack.output" -> why its value is not known locally"""

    def add_stack(self, stack_name: str, template: Mapping[str, Any], resolver: Resolver) -> None:
        """Record a deployed stack's outputs and exports (their values resolved)."""
        values = self.outputs.setdefault(stack_name, {})
        for name, output in template.get("Outputs", {}).items():
            if output.get("Condition") and not resolver.condition(output["Condition"]):
                continue
            try:
                value = str(resolver.resolve(output["Value"]))
            except DeploymentError as error:
                # Refers to what was skipped: an error only for a stack that imports it.
                self.unresolved[f"{stack_name}.{name}"] = str(error)
                if "Export" in output:
                    export_name = str(resolver.resolve(output["Export"]["Name"]))
                    self.unresolved[f"export {export_name}"] = str(error)
                continue
            values[name] = value
            if "Export" in output:
                export_name = str(resolver.resolve(output["Export"]["Name"]))
                if export_name in self.exports:
                    # CloudFormation refuses a second stack exporting the same name.
                    raise DeploymentError(
                        f"export {export_name!r} of stack {stack_name} is already exported"
                    )
                self.exports[export_name] = value

    def import_value(self, name: str) -> str:
        if f"export {name}" in self.unresolved:
            raise DeploymentError(f"Fn::ImportValue {name!r}: {self.unresolved[f'export {name}']}")
        if name not in self.exports:
            raise DeploymentError(
                f"Fn::ImportValue {name!r}: no stack deployed locally exports it (exports: "
                f"{sorted(self.exports) or 'none'}); the emulator deploys only the stacks the "
                "chosen one depends on in the cloud assembly"
            )
        return self.exports[name]

    def stack_output(self, stack_name: str, output_name: str, region: str | None) -> str:
        if region not in (None, self.region):
            raise DeploymentError(
                f"Fn::GetStackOutput {stack_name}.{output_name}: region {region} is not "
                f"emulated (the emulator deploys in {self.region})"
            )
        outputs = self.outputs.get(stack_name)
        if outputs is None:
            raise DeploymentError(
                f"Fn::GetStackOutput {stack_name}.{output_name}: stack {stack_name} is not "
                f"deployed locally (deployed: {sorted(self.outputs) or 'none'})"
            )
        if f"{stack_name}.{output_name}" in self.unresolved:
            raise DeploymentError(
                f"Fn::GetStackOutput {stack_name}.{output_name}: "
                f"{self.unresolved[f'{stack_name}.{output_name}']}"
            )
        if output_name not in outputs:
            raise DeploymentError(
                f"Fn::GetStackOutput {stack_name}.{output_name}: the stack has no such output "
                f"(outputs: {sorted(outputs)})"
            )
        return outputs[output_name]


def physical_name(stack_name: str, logical_id: str, *, max_length: int, suffix: str = "") -> str:
    """A generated name like CloudFormation's ``{stack}-{LogicalId}-{RANDOM}``, within a limit."""
    random_part = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(12))
    budget = max_length - len(random_part) - len(suffix) - 2
    stack_part, logical_part = stack_name, logical_id
    if len(stack_part) + len(logical_part) > budget:
        # CloudFormation shortens both parts; keep the logical id's start, which names the thing.
        logical_part = logical_part[: max(budget - len(stack_part), budget // 2)]
        stack_part = stack_part[: budget - len(logical_part)]
    return f"{stack_part}-{logical_part}-{random_part}{suffix}"


_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class Resolver:
    """Resolves intrinsic functions against the resources deployed so far."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        region: str,
        account_id: str,
        stack_name: str,
        exports: StackExports | None = None,
    ) -> None:
        self._template = template
        self._exports = exports or StackExports(region)
        self.region = region
        self.account_id = account_id
        self.stack_name = stack_name
        self.stack_id = (
            f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/{uuid.uuid4()}"
        )
        self.deployed: dict[str, PhysicalResource] = {}
        self._conditions: dict[str, bool] = {}

    @property
    def pseudo_parameters(self) -> dict[str, str]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
        }

    def condition(self, name: str) -> bool:
        """The value of one of the template's Conditions."""
        if name not in self._conditions:
            definition = self._template.get("Conditions", {}).get(name)
            if definition is None:
                raise DeploymentError(f"condition {name!r} is not defined in the template")
            self._conditions[name] = bool(self.resolve(definition))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function replaced by its local value."""
        if isinstance(value, list):
            return [
                item for item in (self.resolve(item) for item in value) if item is not _NO_VALUE
            ]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key == "Condition":
                return self.condition(argument)
            if key.startswith("Fn::"):
                return self._function(key, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name == "AWS::NotificationARNs":
            return []
        if name in self.pseudo_parameters:
            return self.pseudo_parameters[name]
        parameter = self._template.get("Parameters", {}).get(name)
        if parameter is not None:
            if parameter.get("Type", "").startswith("AWS::SSM::Parameter::Value"):
                raise DeploymentError(
                    f"parameter {name} is read from SSM Parameter Store "
                    f"({parameter.get('Default')}) at deploy time; the emulator has no such value"
                )
            if "Default" not in parameter:
                raise DeploymentError(f"parameter {name} has no Default to deploy locally with")
            return parameter["Default"]
        if name in self.deployed:
            return self.deployed[name].ref
        raise DeploymentError(f"Ref to {name!r}, which is not deployed (yet)")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        resource = self.deployed.get(logical_id)
        if resource is None:
            raise DeploymentError(f"Fn::GetAtt on {logical_id!r}, which is not deployed (yet)")
        if attribute not in resource.attributes:
            raise DeploymentError(
                f"Fn::GetAtt {logical_id}.{attribute} is not available locally "
                f"(known: {sorted(resource.attributes)})"
            )
        return resource.attributes[attribute]

    def _function(self, name: str, argument: Any) -> Any:
        if name == "Fn::GetAtt":
            if isinstance(argument, str):
                argument = argument.split(".", 1)
            return self._get_att(argument[0], self.resolve(argument[1]))
        if name == "Fn::Join":
            separator, items = argument
            return str(separator).join(str(item) for item in self.resolve(items))
        if name == "Fn::Sub":
            return self._sub(argument)
        if name == "Fn::Select":
            index, items = self.resolve(argument)
            return items[int(index)]
        if name == "Fn::Split":
            separator, text = self.resolve(argument)
            return str(text).split(separator)
        if name == "Fn::GetAZs":
            return [f"{self.region}{zone}" for zone in "abc"]
        if name == "Fn::Base64":
            import base64

            return base64.b64encode(str(self.resolve(argument)).encode()).decode()
        if name == "Fn::FindInMap":
            map_name, top, second = self.resolve(argument)[:3]
            return self._template["Mappings"][map_name][top][second]
        if name == "Fn::If":
            condition, if_true, if_false = argument
            return self.resolve(if_true if self.condition(condition) else if_false)
        if name == "Fn::Equals":
            left, right = self.resolve(argument)
            return left == right
        if name == "Fn::Not":
            return not self.resolve(argument)[0]
        if name == "Fn::And":
            return all(self.resolve(argument))
        if name == "Fn::Or":
            return any(self.resolve(argument))
        if name == "Fn::ToJsonString":
            return json.dumps(self.resolve(argument), separators=(",", ":"))
        if name == "Fn::ImportValue":
            return self._exports.import_value(str(self.resolve(argument)))
        if name == "Fn::GetStackOutput":
            reference = self.resolve(argument)
            return self._exports.stack_output(
                str(reference["StackName"]), str(reference["OutputName"]), reference.get("Region")
            )
        # Fn::Transform, Fn::Cidr...: nothing local can answer them faithfully.
        raise DeploymentError(f"intrinsic function {name} is not supported by the local emulator")

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, raw_variables = argument
            variables = {key: self.resolve(value) for key, value in raw_variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self._get_att(logical_id, attribute)
            return str(self._ref(name))

        return _SUB_VARIABLE.sub(replace, text)


class _NoValue:
    """AWS::NoValue: the property is removed."""


_NO_VALUE = _NoValue()


def references(value: Any) -> set[str]:
    """Logical ids (and parameter names) that a template fragment refers to."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                target = item.split(".", 1)[0] if isinstance(item, str) else item[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                for name in _SUB_VARIABLE.findall(text):
                    if not name.startswith("!"):
                        found.add(name.split(".", 1)[0])
                if not isinstance(item, str):
                    found |= references(item[1])
            else:
                found |= references(item)
    return found


def deployment_order(resources: list[TemplateResource]) -> list[TemplateResource]:
    """Resources ordered so that each comes after everything it refers to or depends on."""
    by_id = {resource.logical_id: resource for resource in resources}
    ordered: list[TemplateResource] = []
    state: dict[str, str] = {}

    def visit(resource: TemplateResource, path: tuple[str, ...]) -> None:
        if state.get(resource.logical_id) == "done":
            return
        if state.get(resource.logical_id) == "visiting":
            cycle = " -> ".join((*path, resource.logical_id))
            raise DeploymentError(f"circular dependency between resources: {cycle}")
        state[resource.logical_id] = "visiting"
        needed = references(resource.properties) | set(resource.depends_on)
        for name in sorted(needed):
            if name in by_id:
                visit(by_id[name], (*path, resource.logical_id))
        state[resource.logical_id] = "done"
        ordered.append(resource)

    for resource in resources:
        visit(resource, ())
    return ordered
