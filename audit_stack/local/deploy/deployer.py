"""Deploys a synthesized stack into the emulator, after the stacks it depends on: the data path
through its API, what moto can hold beside it, the rest skipped and listed.

moto's own CloudFormation is not used: it silently skips SNS subscriptions and queue policies and
has no DynamoDB GlobalTable. One handler per resource type, in the module of its service, listed
in ``HANDLERS``. On the data path (see ``data_path``), each property is either reproduced, listed
as having no local effect, or rejected with an error naming the resource type and the property;
off it, what cannot be reproduced is skipped and listed instead, never a reason to refuse a stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from audit_stack.discovery import METADATA_KEY
from audit_stack.local.deploy import buckets, functions, messaging, monitoring, secrets, storage
from audit_stack.local.deploy.context import DeployContext, skip_reason
from audit_stack.local.deploy.model import Deployment
from audit_stack.local.deploy.template import (
    CloudAssembly,
    DeploymentError,
    PhysicalResource,
    StackExports,
    TemplateResource,
    deployment_order,
    references,
)

Handler = Callable[[DeployContext, TemplateResource], PhysicalResource]

HANDLERS: Mapping[str, Handler] = {
    "AWS::SNS::Topic": messaging.deploy_topic,
    "AWS::SQS::Queue": messaging.deploy_queue,
    "AWS::SNS::Subscription": messaging.deploy_subscription,
    "AWS::DynamoDB::Table": storage.deploy_table,
    "AWS::DynamoDB::GlobalTable": storage.deploy_global_table,
    "AWS::SecretsManager::Secret": secrets.deploy_secret,
    "AWS::Lambda::Function": functions.deploy_function,
    "AWS::Lambda::LayerVersion": functions.deploy_layer_version,
    "AWS::Lambda::EventSourceMapping": functions.deploy_event_source_mapping,
    "AWS::S3::Bucket": buckets.deploy_bucket,
    # Off the data path, but created so that operators read their states locally too.
    "AWS::CloudWatch::Alarm": monitoring.deploy_alarm,
    "AWS::KMS::Key": monitoring.deploy_key,
}
# Resources that hold no data, only point at others: the data path is not followed through them
# (a key policy names a user's role, whose policy names the user's bucket...).
_POINTERS_PREFIXES = ("AWS::IAM::", "AWS::Logs::")
NOT_EMULATED = "not emulated, and no AuditPipeline resource uses it"


def data_path(
    resources: Iterable[TemplateResource],
    imported: Iterable[str] = (),
    *,
    pipelines_deployed: bool = True,
) -> set[str]:
    """Logical ids of the resources a pipeline's data goes through: every resource an
    AuditPipeline marks (``Metadata.AuditPipeline``), or, when no stack deployed holds a pipeline
    (``pipelines_deployed`` False), every function and event-source mapping; the resources behind
    the outputs (``imported``) that the stacks depending on this one import for their data path;
    and everything these refer to, except through IAM and Logs resources."""
    by_id = {resource.logical_id: resource for resource in resources}
    roots = {logical_id for logical_id, r in by_id.items() if METADATA_KEY in r.metadata}
    if not pipelines_deployed:
        roots = {
            logical_id
            for logical_id, r in by_id.items()
            if r.type in {"AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping"}
        }
    found: set[str] = set()
    pending = [*roots, *imported]
    while pending:
        logical_id = pending.pop()
        if logical_id in found or logical_id not in by_id:
            continue
        found.add(logical_id)
        resource = by_id[logical_id]
        if not resource.type.startswith(_POINTERS_PREFIXES):
            pending.extend(references(resource.properties))
    return found


def imported_exports(resources: Iterable[TemplateResource], among: set[str]) -> set[str]:
    """The export names that the resources ``among`` import with a literal Fn::ImportValue."""
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key == "Fn::ImportValue" and isinstance(item, str):
                    names.add(item)
                else:
                    walk(item)

    for resource in resources:
        if resource.logical_id in among:
            walk(resource.properties)
    return names


def _exported_resources(assembly: CloudAssembly, export_names: set[str]) -> set[str]:
    """Logical ids that the outputs exported under ``export_names`` refer to."""
    found: set[str] = set()
    for output in assembly.template.get("Outputs", {}).values():
        name = output.get("Export", {}).get("Name")
        if isinstance(name, str) and name in export_names:
            found |= references(output.get("Value"))
    return found


class Deployer:
    """Creates a stack's resources, and those of the stacks it depends on, through boto3 clients
    bound to the emulator."""

    def __init__(
        self,
        assembly: CloudAssembly,
        *,
        client: Callable[[str], Any],
        region: str,
        account_id: str,
    ) -> None:
        self._assembly = assembly
        self._client = client
        self._region = region
        self._account_id = account_id

    def deploy(self) -> Deployment:
        """Validate every stack, then deploy the dependencies in order and the stack last.

        :returns: the chosen stack's deployment; those of its dependencies in ``dependencies``.
        """
        stacks = [self._assembly.stack(name) for name in self._assembly.dependency_stacks]
        stacks.append(self._assembly)
        # What each stack's data path needs, from the chosen stack back to its dependencies.
        paths: dict[str, set[str]] = {}
        wanted_exports: set[str] = set()
        pipelines_deployed = any(
            METADATA_KEY in resource.metadata
            for assembly in stacks
            for resource in assembly.resources()
        )
        for assembly in reversed(stacks):
            resources = assembly.resources()
            path = data_path(
                resources,
                _exported_resources(assembly, wanted_exports),
                pipelines_deployed=pipelines_deployed,
            )
            paths[assembly.stack_name] = path
            wanted_exports |= imported_exports(resources, path)
        for assembly in stacks:
            _refuse_unsupported(assembly, paths[assembly.stack_name])
        exports = StackExports(self._region)
        layers: dict[str, Path] = {}
        deployments = [
            self._deploy_stack(assembly, paths[assembly.stack_name], exports, layers)
            for assembly in stacks
        ]
        deployment = deployments[-1]
        deployment.dependencies = deployments[:-1]
        for deployed in deployments:
            deployed.exports = exports
        return deployment

    def _deploy_stack(
        self,
        assembly: CloudAssembly,
        path: set[str],
        exports: StackExports,
        layers: dict[str, Path],
    ) -> Deployment:
        context = DeployContext(
            assembly,
            client=self._client,
            region=self._region,
            account_id=self._account_id,
            exports=exports,
            layers=layers,
        )
        deployment = context.deployment
        for resource in deployment_order(assembly.resources()):
            if resource.condition and not context.resolver.condition(resource.condition):
                continue
            deployment.resource_types[resource.logical_id] = resource.type
            handler = HANDLERS.get(resource.type)
            physical: PhysicalResource | None = None
            reason = skip_reason(resource.type) or NOT_EMULATED
            if handler is not None:
                try:
                    physical = handler(context, resource)
                except DeploymentError as error:
                    if resource.logical_id in path:
                        raise
                    # Off the data path: listed with the reason instead of refusing the stack.
                    reason = f"not reproduced: {error}"
            if physical is None:
                physical = context.placeholder(resource)
                deployment.skipped.append((resource.logical_id, resource.type, reason))
            context.resolver.deployed[resource.logical_id] = physical
            deployment.resources[resource.logical_id] = physical
        for name in assembly.template.get("Rules", {}):
            deployment.not_reproduced.append(
                ("Rules", name, "deploy-time assertions about the target account (e.g. bootstrap)")
            )
        exports.add_stack(assembly.stack_name, assembly.template, context.resolver)
        deployment.outputs = dict(exports.outputs[assembly.stack_name])
        for key, reason in exports.unresolved.items():
            stack_name, _, output = key.partition(".")
            if stack_name == assembly.stack_name and output:
                deployment.not_reproduced.append(("Outputs", output, reason))
        return deployment


def _refuse_unsupported(assembly: CloudAssembly, path: set[str]) -> None:
    """Checked before anything is created, so a refused deployment leaves nothing behind."""
    unsupported = sorted(
        {
            resource.type
            for resource in assembly.resources()
            if resource.logical_id in path
            and resource.type not in HANDLERS
            and skip_reason(resource.type) is None
        }
    )
    if unsupported:
        raise DeploymentError(
            f"resource type(s) {', '.join(unsupported)} are on the data path of stack "
            f"{assembly.stack_name} and the local emulator cannot reproduce them"
        )
