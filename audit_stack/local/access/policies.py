"""The template's policies with physical ARNs: each role's identity policies, and the resource
policies of queues, topics, tables, keys and secrets, read once after the deployment."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from audit_stack.iam import Policy, validate
from audit_stack.local.deploy.model import Deployment
from audit_stack.local.deploy.template import Resolver

ADMINISTRATOR_ACCESS: Policy = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
_LOGS_WRITE: Policy = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
}
# AWS managed policies a template may attach, by ARN suffix; what they grant on the data path.
AWS_MANAGED_POLICIES: Mapping[str, Policy] = {
    "AdministratorAccess": ADMINISTRATOR_ACCESS,
    "service-role/AWSLambdaBasicExecutionRole": _LOGS_WRITE,
    "service-role/AWSLambdaSQSQueueExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            *_LOGS_WRITE["Statement"],
            {
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": "*",
            },
        ],
    },
    "AWSXRayDaemonWriteAccess": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "xray:Put*", "Resource": "*"}],
    },
}
_AWS_MANAGED_PREFIX = "arn:aws:iam::aws:policy/"
# The properties each resource type's policies and encryption are read from.
_POLICY_PROPERTIES: Mapping[str, tuple[str, ...]] = {
    "AWS::IAM::Role": ("Policies", "ManagedPolicyArns"),
    "AWS::IAM::Policy": ("PolicyDocument", "Roles"),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument", "Roles"),
    "AWS::SQS::QueuePolicy": ("PolicyDocument", "Queues"),
    "AWS::SNS::TopicPolicy": ("PolicyDocument", "Topics"),
    "AWS::DynamoDB::Table": ("ResourcePolicy",),
    "AWS::DynamoDB::GlobalTable": ("Replicas",),
    "AWS::KMS::Key": ("KeyPolicy",),
    "AWS::SecretsManager::ResourcePolicy": ("SecretId", "ResourcePolicy"),
    "AWS::SecretsManager::Secret": ("Name",),
    "AWS::Lambda::Function": ("Role",),
    "AWS::SQS::Queue": ("KmsMasterKeyId",),
    "AWS::SNS::Topic": ("KmsMasterKeyId",),
}


@dataclass
class PolicyStore:
    """Policies by principal and by resource ARN (physical, as requests name them)."""

    account_id: str
    role_policies: dict[str, list[Policy]] = field(default_factory=lambda: defaultdict(list))
    """role ARN -> identity policies"""
    resource_policies: dict[str, Policy] = field(default_factory=dict)
    """queue/topic/table/secret ARN -> its resource-based policy"""
    key_policies: dict[str, Policy] = field(default_factory=dict)
    """KMS key ARN -> key policy"""
    encryption_keys: dict[str, str] = field(default_factory=dict)
    """queue or topic ARN -> the ARN of the customer managed key that encrypts it"""
    function_roles: dict[str, str] = field(default_factory=dict)
    """function ARN -> execution role ARN"""
    secret_arns: dict[str, str] = field(default_factory=dict)
    """secret name -> ARN"""
    unknown_managed_policies: list[str] = field(default_factory=list)

    def identity_policies(self, principal_arn: str) -> list[Policy]:
        """A template role's policies; any other principal is an administrator."""
        if principal_arn in self.role_policies:
            return list(self.role_policies[principal_arn])
        return [ADMINISTRATOR_ACCESS]

    def key_arn(self, key_id: str, region: str) -> str:
        """A key's ARN from a KeyId as requests carry it (id or ARN)."""
        if key_id.startswith("arn:"):
            return key_id
        return f"arn:aws:kms:{region}:{self.account_id}:key/{key_id}"


def _document(value: Any) -> Policy:
    document = json.loads(value) if isinstance(value, str) else value
    if not isinstance(document, Mapping):
        raise ValueError(f"policy document {value!r} is not an object")
    return document


def _merge(existing: Policy | None, added: Policy) -> Policy:
    if existing is None:
        return added
    statements = [*_statements(existing), *_statements(added)]
    return {"Version": "2012-10-17", "Statement": statements}


def _statements(policy: Policy) -> list[Any]:
    raw = policy.get("Statement", [])
    return list(raw) if isinstance(raw, list) else [raw]


def load_policies(template: Mapping[str, Any], deployment: Deployment) -> PolicyStore:
    """Every policy of the deployed template, resolved against the deployment's resources."""
    resolver = Resolver(
        template,
        region=deployment.region,
        account_id=deployment.account_id,
        stack_name=deployment.stack_name,
    )
    resolver.deployed.update(deployment.resources)
    store = PolicyStore(deployment.account_id)
    resources: Mapping[str, Any] = template.get("Resources", {})
    deployed = {
        logical_id: resource
        for logical_id, resource in resources.items()
        if logical_id in deployment.resources
    }
    role_arn_by_name: dict[str, str] = {}
    key_arn_by_id: dict[str, str] = {}
    for logical_id, resource in deployed.items():
        physical = deployment.resources[logical_id]
        if resource["Type"] == "AWS::IAM::Role":
            role_arn_by_name[physical.ref] = physical.attributes["Arn"]
        elif resource["Type"] == "AWS::KMS::Key":
            key_arn_by_id[physical.ref] = physical.attributes["Arn"]
    queue_arn_by_url = {queue.url: queue.arn for queue in deployment.queues}
    managed: dict[str, Policy] = {}
    for logical_id, resource in deployed.items():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            properties = resolver.resolve(
                {"PolicyDocument": resource.get("Properties", {})["PolicyDocument"]}
            )
            managed[deployment.resources[logical_id].ref] = _document(properties["PolicyDocument"])

    def attach(role_names: Any, policy: Policy) -> None:
        validate(policy, resource_policy=False)
        for name in role_names or []:
            arn = role_arn_by_name.get(str(name), str(name))
            store.role_policies[arn].append(policy)

    for logical_id, resource in deployed.items():
        kind = resource["Type"]
        wanted = _POLICY_PROPERTIES.get(kind)
        if wanted is None:
            continue
        # Only the properties policies need: others may hold what only AWS resolves (SSM).
        raw = resource.get("Properties", {})
        properties = resolver.resolve({name: raw[name] for name in wanted if name in raw})
        physical = deployment.resources[logical_id]
        if kind == "AWS::IAM::Role":
            arn = physical.attributes["Arn"]
            store.role_policies.setdefault(arn, [])
            for inline in properties.get("Policies", []):
                attach([physical.ref], _document(inline["PolicyDocument"]))
            for managed_arn in properties.get("ManagedPolicyArns", []):
                if managed_arn in managed:
                    attach([physical.ref], managed[managed_arn])
                elif str(managed_arn).startswith(_AWS_MANAGED_PREFIX):
                    name = str(managed_arn).removeprefix(_AWS_MANAGED_PREFIX)
                    if name in AWS_MANAGED_POLICIES:
                        attach([physical.ref], AWS_MANAGED_POLICIES[name])
                    else:
                        store.unknown_managed_policies.append(str(managed_arn))
        elif kind in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            attach(properties.get("Roles"), _document(properties["PolicyDocument"]))
        elif kind == "AWS::SQS::QueuePolicy":
            policy = _document(properties["PolicyDocument"])
            for url in properties.get("Queues", []):
                arn = queue_arn_by_url.get(str(url), str(url))
                store.resource_policies[arn] = _merge(store.resource_policies.get(arn), policy)
        elif kind == "AWS::SNS::TopicPolicy":
            policy = _document(properties["PolicyDocument"])
            for topic_arn in properties.get("Topics", []):
                store.resource_policies[str(topic_arn)] = _merge(
                    store.resource_policies.get(str(topic_arn)), policy
                )
        elif kind == "AWS::DynamoDB::Table" and "ResourcePolicy" in properties:
            store.resource_policies[physical.attributes["Arn"]] = _document(
                properties["ResourcePolicy"]["PolicyDocument"]
            )
        elif kind == "AWS::DynamoDB::GlobalTable":
            for replica in properties.get("Replicas", []):
                if replica.get("Region") == deployment.region and "ResourcePolicy" in replica:
                    store.resource_policies[physical.attributes["Arn"]] = _document(
                        replica["ResourcePolicy"]["PolicyDocument"]
                    )
        elif kind == "AWS::KMS::Key" and "KeyPolicy" in properties:
            store.key_policies[physical.attributes["Arn"]] = _document(properties["KeyPolicy"])
        elif kind == "AWS::SecretsManager::ResourcePolicy":
            secret_arn = str(properties["SecretId"])
            store.resource_policies[secret_arn] = _document(properties["ResourcePolicy"])
        elif kind == "AWS::SecretsManager::Secret":
            name = physical.ref.split(":secret:", 1)[-1].rsplit("-", 1)[0]
            store.secret_arns[str(properties.get("Name") or name)] = physical.ref
        elif kind == "AWS::Lambda::Function":
            function = next(spec for spec in deployment.functions if spec.logical_id == logical_id)
            # Without a Role (a test's probe: CreateFunction would refuse it) a function calls
            # as a role of its own name that no template policy names: an administrator.
            store.function_roles[function.arn] = str(
                properties.get("Role") or f"arn:aws:iam::{store.account_id}:role/{function.name}"
            )
        if kind in {"AWS::SQS::Queue", "AWS::SNS::Topic"}:
            key = properties.get("KmsMasterKeyId")
            if key and "alias/aws/" not in str(key):  # AWS managed keys: IAM decides
                arn = physical.attributes.get("Arn") or physical.attributes.get("TopicArn", "")
                store.encryption_keys[arn] = key_arn_by_id.get(str(key), str(key))
    for arn, policy in [*store.resource_policies.items(), *store.key_policies.items()]:
        try:
            validate(policy, resource_policy=True)
        except ValueError as error:
            raise ValueError(f"the policy of {arn}: {error}") from error
    return store
