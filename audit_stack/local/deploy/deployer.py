"""Deploys a synthesized stack into the emulator: the data path through its API, the rest skipped.

moto's own CloudFormation is not used: it silently skips SNS subscriptions and queue policies and
has no DynamoDB GlobalTable. Each property is either reproduced, listed as having no local effect,
or rejected with an error naming the resource type and the property. One handler per resource
type, in the module of its service, listed in ``HANDLERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from audit_stack.local.deploy import functions, messaging, monitoring, secrets, storage
from audit_stack.local.deploy.context import DeployContext, skip_reason
from audit_stack.local.deploy.model import Deployment
from audit_stack.local.deploy.template import (
    CloudAssembly,
    DeploymentError,
    PhysicalResource,
    TemplateResource,
    deployment_order,
)

Handler = Callable[[DeployContext, TemplateResource], PhysicalResource]

HANDLERS: Mapping[str, Handler] = {
    "AWS::SNS::Topic": messaging.deploy_topic,
    "AWS::SQS::Queue": messaging.deploy_queue,
    "AWS::SNS::Subscription": messaging.deploy_subscription,
    "AWS::DynamoDB::Table": storage.deploy_table,
    "AWS::DynamoDB::GlobalTable": storage.deploy_global_table,
    "AWS::S3::Bucket": storage.deploy_bucket,
    "AWS::SecretsManager::Secret": secrets.deploy_secret,
    "AWS::Lambda::Function": functions.deploy_function,
    "AWS::Lambda::EventSourceMapping": functions.deploy_event_source_mapping,
    # Off the data path, but created so that operators read their states locally too.
    "AWS::CloudWatch::Alarm": monitoring.deploy_alarm,
    "AWS::KMS::Key": monitoring.deploy_key,
}


class Deployer:
    """Creates a stack's resources through boto3 clients bound to the emulator."""

    def __init__(
        self,
        assembly: CloudAssembly,
        *,
        client: Callable[[str], Any],
        region: str,
        account_id: str,
    ) -> None:
        self._assembly = assembly
        self._context = DeployContext(assembly, client=client, region=region, account_id=account_id)

    def deploy(self) -> Deployment:
        """Validate the whole template, then create its resources in dependency order."""
        context = self._context
        resources = deployment_order(self._assembly.resources())
        unsupported = sorted(
            {
                resource.type
                for resource in resources
                if resource.type not in HANDLERS and skip_reason(resource.type) is None
            }
        )
        if unsupported:
            # Checked before anything is created, so a failed deployment leaves nothing behind.
            raise DeploymentError(
                f"resource type(s) {', '.join(unsupported)} are on the data path of this stack "
                "and the local emulator cannot reproduce them"
            )
        deployment = context.deployment
        for resource in resources:
            if resource.condition and not context.resolver.condition(resource.condition):
                continue
            deployment.resource_types[resource.logical_id] = resource.type
            handler = HANDLERS.get(resource.type)
            if handler is None:
                physical = context.placeholder(resource)
                deployment.skipped.append(
                    (resource.logical_id, resource.type, skip_reason(resource.type) or "")
                )
            else:
                physical = handler(context, resource)
            context.resolver.deployed[resource.logical_id] = physical
            deployment.resources[resource.logical_id] = physical
        for name in self._assembly.template.get("Rules", {}):
            deployment.not_reproduced.append(
                ("Rules", name, "deploy-time assertions about the target account (e.g. bootstrap)")
            )
        for name, output in self._assembly.template.get("Outputs", {}).items():
            if output.get("Condition") and not context.resolver.condition(output["Condition"]):
                continue
            deployment.outputs[name] = str(context.resolver.resolve(output["Value"]))
        return deployment
