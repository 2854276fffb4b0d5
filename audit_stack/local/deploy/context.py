"""What every resource handler of the deployment shares: the resolver, the clients, the
deployment so far, and the one place that accepts, declares or rejects each property."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Set
from typing import Any

from audit_stack.local.deploy.model import Deployment
from audit_stack.local.deploy.template import (
    CloudAssembly,
    DeploymentError,
    PhysicalResource,
    Resolver,
    TemplateResource,
    physical_name,
)

# Off the data path: nothing they do changes what a message or an item goes through locally.
SKIPPED_PREFIXES = {
    "AWS::IAM::": "not created: the emulator enforces its policies (audit_stack.local.access)",
    "AWS::Logs::": "function logs are captured by the emulator instead",
    "AWS::CloudWatch::": "metrics and dashboards are not emulated",
    "AWS::KMS::": "encryption at rest is not emulated (key policies are enforced)",
}
SKIPPED_TYPES = {
    "AWS::SNS::TopicPolicy": "not created: the emulator enforces it (audit_stack.local.access)",
    "AWS::SQS::QueuePolicy": "not created: the emulator enforces it (audit_stack.local.access)",
    "AWS::Lambda::Permission": "a function's resource policy is not enforced (AWS services use it)",
    "AWS::SecretsManager::ResourcePolicy": "not created: the emulator enforces it",
    "AWS::S3::BucketPolicy": "a bucket policy is not enforced by the emulator",
    "AWS::CDK::Metadata": "CDK usage metadata",
    "AWS::Events::Rule": "EventBridge rules do not run locally: no schedules (run `audit seal` "
    "or invoke the sealer) and no CloudTrail events",
}


class DeployContext:
    """The state one deployment's resource handlers read and extend."""

    def __init__(
        self,
        assembly: CloudAssembly,
        *,
        client: Callable[[str], Any],
        region: str,
        account_id: str,
    ) -> None:
        self.assembly = assembly
        self.client = client
        self.resolver = Resolver(
            assembly.template,
            region=region,
            account_id=account_id,
            stack_name=assembly.stack_name,
        )
        self.deployment = Deployment(
            assembly.stack_name, region, account_id, stack_id=self.resolver.stack_id
        )

    def properties(
        self,
        resource: TemplateResource,
        *,
        reproduced: Set[str],
        no_local_effect: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The resolved properties, after rejecting any that cannot be reproduced."""
        no_local_effect = no_local_effect or {}
        for name in resource.properties:
            if name in no_local_effect:
                self.deployment.not_reproduced.append(
                    (resource.logical_id, name, no_local_effect[name])
                )
            elif name not in reproduced:
                raise DeploymentError(
                    f"{resource.type} property {name} (resource {resource.logical_id}) "
                    "cannot be reproduced by the local emulator"
                )
        kept = {name: value for name, value in resource.properties.items() if name in reproduced}
        resolved: dict[str, Any] = self.resolver.resolve(kept)
        return resolved

    def name(self, resource: TemplateResource, given: Any, *, max_length: int) -> str:
        if given:
            return str(given)
        return physical_name(self.assembly.stack_name, resource.logical_id, max_length=max_length)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.resolver.region}:{self.resolver.account_id}:{resource}"

    def placeholder(self, resource: TemplateResource) -> PhysicalResource:
        """Ref/GetAtt values for a skipped resource, shaped like the real ones."""
        properties = resource.properties
        account = self.resolver.account_id
        if resource.type == "AWS::IAM::Role":
            name = self.name(resource, properties.get("RoleName"), max_length=64)
            return PhysicalResource(
                name,
                {"Arn": f"arn:aws:iam::{account}:role/{name}", "RoleId": uuid.uuid4().hex.upper()},
            )
        if resource.type == "AWS::Logs::LogGroup":
            name = self.name(resource, properties.get("LogGroupName"), max_length=512)
            return PhysicalResource(name, {"Arn": self.arn("logs", f"log-group:{name}:*")})
        if resource.type == "AWS::KMS::Key":
            key_id = str(uuid.uuid4())
            return PhysicalResource(
                key_id, {"Arn": self.arn("kms", f"key/{key_id}"), "KeyId": key_id}
            )
        if resource.type == "AWS::IAM::ManagedPolicy":
            name = self.name(resource, properties.get("ManagedPolicyName"), max_length=128)
            return PhysicalResource(f"arn:aws:iam::{account}:policy/{name}")
        name = physical_name(self.assembly.stack_name, resource.logical_id, max_length=128)
        return PhysicalResource(name, {"Arn": self.arn(resource.type.split("::")[1].lower(), name)})


def skip_reason(resource_type: str) -> str | None:
    if resource_type in SKIPPED_TYPES:
        return SKIPPED_TYPES[resource_type]
    return next(
        (reason for prefix, reason in SKIPPED_PREFIXES.items() if resource_type.startswith(prefix)),
        None,
    )


def template_bool(value: Any) -> bool:
    """A CloudFormation boolean, which templates may also spell as a string."""
    return value if isinstance(value, bool) else str(value).lower() == "true"


def attribute_text(value: Any) -> str:
    """A property as the string SQS/SNS attributes take (JSON documents, lower-case booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
