"""Deploys a synthesized stack into the emulator: the data path through its API, the rest skipped.

moto's own CloudFormation is not used: it silently skips SNS subscriptions and queue policies and
has no DynamoDB GlobalTable. Each property is either reproduced, listed as having no local effect,
or rejected with an error naming the resource type and the property.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import uuid
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from audit_stack.local.functions import FunctionSpec
from audit_stack.local.pollers import EventSourceSpec
from audit_stack.local.template import (
    CloudAssembly,
    DeploymentError,
    PhysicalResource,
    Resolver,
    TemplateResource,
    deployment_order,
    physical_name,
)

# Off the data path: nothing they do changes what a message or an item goes through locally.
_SKIPPED_PREFIXES = {
    "AWS::IAM::": "IAM is not enforced by the emulator",
    "AWS::Logs::": "function logs are captured by the emulator instead",
    "AWS::CloudWatch::": "metrics and dashboards are not emulated",
    "AWS::KMS::": "encryption at rest is not emulated",
}
_SKIPPED_TYPES = {
    "AWS::SNS::TopicPolicy": "resource policies are not enforced by the emulator",
    "AWS::SQS::QueuePolicy": "resource policies are not enforced by the emulator",
    "AWS::Lambda::Permission": "resource policies are not enforced by the emulator",
    "AWS::SecretsManager::ResourcePolicy": "resource policies are not enforced by the emulator",
    "AWS::CDK::Metadata": "CDK usage metadata",
    "AWS::Events::Rule": "EventBridge rules do not run locally: no schedules (run `audit seal` "
    "or invoke the sealer) and no CloudTrail events",
}

_POWERTOOLS_LAYER_PARAMETER = re.compile(r"^/aws/service/powertools/python/[^/]+/[^/]+/(.+)$")
_POWERTOOLS_LAYER_ARN = re.compile(r":layer:AWSLambdaPowertoolsPython")

_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)
_TOPIC_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DisplayName",
    "FifoTopic",
    "KmsMasterKeyId",
    "SignatureVersion",
    "TracingConfig",
)


@dataclass(frozen=True)
class QueueInfo:
    """A deployed queue and where its redrive policy sends failed messages."""

    logical_id: str
    name: str
    url: str
    arn: str
    dead_letter_target_arn: str | None
    max_receive_count: int | None


@dataclass
class Deployment:
    """The result of deploying a stack locally."""

    stack_name: str
    region: str
    account_id: str
    stack_id: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    resources: dict[str, PhysicalResource] = field(default_factory=dict)
    resource_types: dict[str, str] = field(default_factory=dict)
    functions: list[FunctionSpec] = field(default_factory=list)
    event_sources: list[EventSourceSpec] = field(default_factory=list)
    queues: list[QueueInfo] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    """(logical id, type, why)"""
    not_reproduced: list[tuple[str, str, str]] = field(default_factory=list)
    """(logical id, property, why it has no local effect)"""

    def queue_by_arn(self, arn: str) -> QueueInfo | None:
        return next((queue for queue in self.queues if queue.arn == arn), None)


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
        self._client = client
        self._resolver = Resolver(
            assembly.template,
            region=region,
            account_id=account_id,
            stack_name=assembly.stack_name,
        )
        self._deployment = Deployment(
            assembly.stack_name, region, account_id, stack_id=self._resolver.stack_id
        )
        self._handlers: dict[str, Callable[[TemplateResource], PhysicalResource]] = {
            "AWS::SNS::Topic": self._topic,
            "AWS::SQS::Queue": self._queue,
            "AWS::SNS::Subscription": self._subscription,
            "AWS::DynamoDB::Table": self._table,
            "AWS::DynamoDB::GlobalTable": self._global_table,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::Lambda::Function": self._function,
            "AWS::Lambda::EventSourceMapping": self._event_source_mapping,
            # Off the data path, but created so that operators read their states locally too.
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::KMS::Key": self._key,
        }

    def deploy(self) -> Deployment:
        """Validate the whole template, then create its resources in dependency order."""
        resources = deployment_order(self._assembly.resources())
        unsupported = sorted(
            {
                resource.type
                for resource in resources
                if resource.type not in self._handlers and _skip_reason(resource.type) is None
            }
        )
        if unsupported:
            # Checked before anything is created, so a failed deployment leaves nothing behind.
            raise DeploymentError(
                f"resource type(s) {', '.join(unsupported)} are on the data path of this stack "
                "and the local emulator cannot reproduce them"
            )
        for resource in resources:
            if resource.condition and not self._resolver.condition(resource.condition):
                continue
            self._deployment.resource_types[resource.logical_id] = resource.type
            reason = None if resource.type in self._handlers else _skip_reason(resource.type)
            if reason is not None:
                physical = self._placeholder(resource)
                self._deployment.skipped.append((resource.logical_id, resource.type, reason))
            else:
                physical = self._handlers[resource.type](resource)
            self._resolver.deployed[resource.logical_id] = physical
            self._deployment.resources[resource.logical_id] = physical
        for name in self._assembly.template.get("Rules", {}):
            self._deployment.not_reproduced.append(
                ("Rules", name, "deploy-time assertions about the target account (e.g. bootstrap)")
            )
        for name, output in self._assembly.template.get("Outputs", {}).items():
            if output.get("Condition") and not self._resolver.condition(output["Condition"]):
                continue
            self._deployment.outputs[name] = str(self._resolver.resolve(output["Value"]))
        return self._deployment

    # -- helpers -------------------------------------------------------------------------------

    def _properties(
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
                self._deployment.not_reproduced.append(
                    (resource.logical_id, name, no_local_effect[name])
                )
            elif name not in reproduced:
                raise DeploymentError(
                    f"{resource.type} property {name} (resource {resource.logical_id}) "
                    "cannot be reproduced by the local emulator"
                )
        kept = {name: value for name, value in resource.properties.items() if name in reproduced}
        resolved: dict[str, Any] = self._resolver.resolve(kept)
        return resolved

    def _name(self, resource: TemplateResource, given: Any, *, max_length: int) -> str:
        if given:
            return str(given)
        return physical_name(self._assembly.stack_name, resource.logical_id, max_length=max_length)

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self._resolver.region}:{self._resolver.account_id}:{resource}"

    def _placeholder(self, resource: TemplateResource) -> PhysicalResource:
        """Ref/GetAtt values for a skipped resource, shaped like the real ones."""
        properties = resource.properties
        account = self._resolver.account_id
        if resource.type == "AWS::IAM::Role":
            name = self._name(resource, properties.get("RoleName"), max_length=64)
            return PhysicalResource(
                name,
                {"Arn": f"arn:aws:iam::{account}:role/{name}", "RoleId": uuid.uuid4().hex.upper()},
            )
        if resource.type == "AWS::Logs::LogGroup":
            name = self._name(resource, properties.get("LogGroupName"), max_length=512)
            return PhysicalResource(name, {"Arn": self._arn("logs", f"log-group:{name}:*")})
        if resource.type == "AWS::KMS::Key":
            key_id = str(uuid.uuid4())
            return PhysicalResource(
                key_id, {"Arn": self._arn("kms", f"key/{key_id}"), "KeyId": key_id}
            )
        if resource.type == "AWS::IAM::ManagedPolicy":
            name = self._name(resource, properties.get("ManagedPolicyName"), max_length=128)
            return PhysicalResource(f"arn:aws:iam::{account}:policy/{name}")
        name = physical_name(self._assembly.stack_name, resource.logical_id, max_length=128)
        return PhysicalResource(
            name, {"Arn": self._arn(resource.type.split("::")[1].lower(), name)}
        )

    # -- KMS -----------------------------------------------------------------------------------

    def _key(self, resource: TemplateResource) -> PhysicalResource:
        """Signing keys are created in moto's KMS (digests are signed locally); others skipped."""
        if resource.properties.get("KeyUsage") != "SIGN_VERIFY":
            reason = _skip_reason(resource.type) or ""
            self._deployment.skipped.append((resource.logical_id, resource.type, reason))
            return self._placeholder(resource)
        properties = self._properties(
            resource,
            reproduced={"KeySpec", "KeyUsage", "Description"},
            no_local_effect={
                "KeyPolicy": "key policies are not enforced by the emulator",
                "Tags": "tags have no effect on the data path",
                "EnableKeyRotation": "asymmetric keys do not rotate",
                "PendingWindowInDays": "keys are never deleted locally",
            },
        )
        metadata = self._client("kms").create_key(
            KeySpec=properties["KeySpec"],
            KeyUsage="SIGN_VERIFY",
            Description=str(properties.get("Description", resource.logical_id)),
        )["KeyMetadata"]
        return PhysicalResource(
            metadata["KeyId"], {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]}
        )

    # -- SNS and SQS ---------------------------------------------------------------------------

    def _topic(self, resource: TemplateResource) -> PhysicalResource:
        properties = self._properties(
            resource,
            reproduced={*_TOPIC_ATTRIBUTES, "TopicName", "Tags", "Subscription"},
            no_local_effect={
                "DeliveryStatusLogging": "delivery status logs are not emulated",
                "FifoThroughputScope": "throughput is not limited locally",
            },
        )
        fifo = str(properties.get("FifoTopic", "false")).lower() == "true"
        name = self._name(
            resource, properties.get("TopicName"), max_length=256 - (5 if fifo else 0)
        )
        if fifo and not name.endswith(".fifo"):
            name += ".fifo"
        attributes = {
            key: _attribute_text(properties[key]) for key in _TOPIC_ATTRIBUTES if key in properties
        }
        arn = self._client("sns").create_topic(
            Name=name, Attributes=attributes, Tags=properties.get("Tags", [])
        )["TopicArn"]
        for subscription in properties.get("Subscription", []):
            self._subscribe(resource, arn, subscription["Protocol"], subscription["Endpoint"], {})
        return PhysicalResource(arn, {"TopicArn": arn, "TopicName": name})

    def _queue(self, resource: TemplateResource) -> PhysicalResource:
        properties = self._properties(
            resource, reproduced={*_QUEUE_ATTRIBUTES, "QueueName", "Tags"}
        )
        fifo = str(properties.get("FifoQueue", "false")).lower() == "true"
        name = self._name(resource, properties.get("QueueName"), max_length=80 - (5 if fifo else 0))
        if fifo and not name.endswith(".fifo"):
            name += ".fifo"
        attributes = {
            key: _attribute_text(properties[key]) for key in _QUEUE_ATTRIBUTES if key in properties
        }
        tags = {tag["Key"]: tag["Value"] for tag in properties.get("Tags", [])}
        url = self._client("sqs").create_queue(QueueName=name, Attributes=attributes, tags=tags)[
            "QueueUrl"
        ]
        arn = self._arn("sqs", name)
        redrive = properties.get("RedrivePolicy")
        if isinstance(redrive, str):
            redrive = json.loads(redrive)
        self._deployment.queues.append(
            QueueInfo(
                logical_id=resource.logical_id,
                name=name,
                url=url,
                arn=arn,
                dead_letter_target_arn=redrive["deadLetterTargetArn"] if redrive else None,
                max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
            )
        )
        return PhysicalResource(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _subscription(self, resource: TemplateResource) -> PhysicalResource:
        properties = self._properties(
            resource,
            reproduced={
                "Protocol",
                "Endpoint",
                "TopicArn",
                "FilterPolicy",
                "FilterPolicyScope",
                "RawMessageDelivery",
                "Region",
            },
            no_local_effect={
                "DeliveryPolicy": "delivery to a local queue never needs a retry",
                "RedrivePolicy": "delivery to a local queue never fails, so nothing is redriven",
            },
        )
        region = properties.get("Region", self._resolver.region)
        if region != self._resolver.region:
            raise DeploymentError(
                f"AWS::SNS::Subscription {resource.logical_id}: Region {region} differs from the "
                "stack's; cross-region subscriptions are not emulated"
            )
        attributes: dict[str, str] = {
            key: _attribute_text(properties[key])
            for key in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery")
            if key in properties
        }
        arn = self._subscribe(
            resource,
            properties["TopicArn"],
            properties["Protocol"],
            properties["Endpoint"],
            attributes,
        )
        return PhysicalResource(arn, {"Arn": arn})

    def _subscribe(
        self,
        resource: TemplateResource,
        topic_arn: str,
        protocol: str,
        endpoint: str,
        attributes: dict[str, str],
    ) -> str:
        if protocol != "sqs" or self._deployment.queue_by_arn(endpoint) is None:
            raise DeploymentError(
                f"{resource.type} {resource.logical_id}: Protocol {protocol} to {endpoint} is not "
                "emulated; only subscriptions of this stack's SQS queues are"
            )
        arn: str = self._client("sns").subscribe(
            TopicArn=topic_arn,
            Protocol=protocol,
            Endpoint=endpoint,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return arn

    # -- DynamoDB ------------------------------------------------------------------------------

    _TABLE_NO_LOCAL_EFFECT: Mapping[str, str] = {
        "ContributorInsightsSpecification": "CloudWatch Contributor Insights is not emulated",
        "TimeToLiveSpecification": "expired items are not deleted locally",
        "TableClass": "storage classes are not emulated",
        "ProvisionedThroughput": "throughput is not limited locally",
        "OnDemandThroughput": "throughput is not limited locally",
        "WarmThroughput": "throughput is not limited locally",
        "WriteProvisionedThroughputSettings": "throughput is not limited locally",
        "WriteOnDemandThroughputSettings": "throughput is not limited locally",
        "ResourcePolicy": "resource policies are not enforced by the emulator",
        "SSESpecification": "encryption at rest is not emulated",
        "PointInTimeRecoverySpecification": "backups and restores are not emulated",
        "StreamSpecification": "no local consumer reads table streams",
        "Tags": "tags have no effect on the data path",
    }
    _TABLE_KEYS: frozenset[str] = frozenset(
        {
            "TableName",
            "AttributeDefinitions",
            "KeySchema",
            "BillingMode",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "DeletionProtectionEnabled",
        }
    )

    def _table(self, resource: TemplateResource) -> PhysicalResource:
        properties = self._properties(
            resource, reproduced=self._TABLE_KEYS, no_local_effect=self._TABLE_NO_LOCAL_EFFECT
        )
        return self._create_table(resource, properties)

    def _global_table(self, resource: TemplateResource) -> PhysicalResource:
        # A global table is deployed as its replica in the stack's region, the one the stack's
        # functions use; replicas elsewhere are not emulated.
        properties = self._properties(
            resource,
            reproduced={*self._TABLE_KEYS, "Replicas"} - {"DeletionProtectionEnabled"},
            no_local_effect=self._TABLE_NO_LOCAL_EFFECT,
        )
        replicas = properties.pop("Replicas")
        local = [replica for replica in replicas if replica["Region"] == self._resolver.region]
        if not local:
            raise DeploymentError(
                f"AWS::DynamoDB::GlobalTable {resource.logical_id} has no replica in the stack's "
                f"region {self._resolver.region}"
            )
        if local[0].get("DeletionProtectionEnabled") is not None:
            properties["DeletionProtectionEnabled"] = local[0]["DeletionProtectionEnabled"]
        for replica in replicas:
            if replica is not local[0]:
                self._deployment.not_reproduced.append(
                    (
                        resource.logical_id,
                        "Replicas",
                        f"replica in {replica['Region']} not emulated",
                    )
                )
        return self._create_table(resource, properties)

    def _create_table(
        self, resource: TemplateResource, properties: dict[str, Any]
    ) -> PhysicalResource:
        name = self._name(resource, properties.get("TableName"), max_length=255)
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        provisioned = request["BillingMode"] == "PROVISIONED"
        if provisioned:
            # Required by the API for provisioned tables; its numbers have no local effect.
            request["ProvisionedThroughput"] = self._resolver.resolve(
                resource.properties.get(
                    "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
                )
            )
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if properties.get(key):
                request[key] = [
                    {
                        name: value
                        for name, value in index.items()
                        if name in {"IndexName", "KeySchema", "Projection"}
                        or (provisioned and name == "ProvisionedThroughput")
                    }
                    for index in properties[key]
                ]
        if "DeletionProtectionEnabled" in properties:
            request["DeletionProtectionEnabled"] = bool(properties["DeletionProtectionEnabled"])
        description = self._client("dynamodb").create_table(**request)["TableDescription"]
        return PhysicalResource(
            name,
            {"Arn": description["TableArn"], "StreamArn": description.get("LatestStreamArn", "")},
        )

    # -- Secrets Manager -----------------------------------------------------------------------

    # GenerateSecretString's options that the emulator reproduces (GetRandomPassword's).
    _GENERATE_KEYS: Mapping[str, str] = {
        "PasswordLength": "PasswordLength",
        "ExcludeCharacters": "ExcludeCharacters",
        "ExcludeNumbers": "ExcludeNumbers",
        "ExcludePunctuation": "ExcludePunctuation",
        "ExcludeUppercase": "ExcludeUppercase",
        "ExcludeLowercase": "ExcludeLowercase",
        "IncludeSpace": "IncludeSpace",
        "RequireEachIncludedType": "RequireEachIncludedType",
    }

    def _secret(self, resource: TemplateResource) -> PhysicalResource:
        properties = self._properties(
            resource,
            reproduced={"Name", "Description", "SecretString", "GenerateSecretString", "Tags"},
            no_local_effect={
                "KmsKeyId": "encryption at rest is not emulated",
                "ReplicaRegions": "replicas in other regions are not emulated",
            },
        )
        if "SecretString" in properties and "GenerateSecretString" in properties:
            raise DeploymentError(
                f"AWS::SecretsManager::Secret {resource.logical_id}: SecretString and "
                "GenerateSecretString exclude each other"
            )
        generate = properties.get("GenerateSecretString")
        if generate is not None:
            unknown = sorted(set(generate) - set(self._GENERATE_KEYS))
            if unknown:
                # SecretStringTemplate/GenerateStringKey (a JSON secret) are not needed here.
                raise DeploymentError(
                    f"AWS::SecretsManager::Secret {resource.logical_id}: GenerateSecretString "
                    f"option(s) {', '.join(unknown)} cannot be reproduced by the local emulator"
                )
            options = {
                self._GENERATE_KEYS[key]: (
                    int(value) if key == "PasswordLength" else _template_bool(value)
                )
                if key != "ExcludeCharacters"
                else str(value)
                for key, value in generate.items()
            }
            value = self._client("secretsmanager").get_random_password(**options)
            secret_string = str(value["RandomPassword"])
        else:
            secret_string = str(properties.get("SecretString", ""))
        # Secrets Manager appends 6 random characters to a generated name, as the ARN shows.
        name = self._name(resource, properties.get("Name"), max_length=256)
        request: dict[str, Any] = {"Name": name, "SecretString": secret_string}
        if "Description" in properties:
            request["Description"] = str(properties["Description"])
        if properties.get("Tags"):
            request["Tags"] = properties["Tags"]
        arn = str(self._client("secretsmanager").create_secret(**request)["ARN"])
        return PhysicalResource(arn, {"Id": arn})

    # -- CloudWatch ----------------------------------------------------------------------------

    _ALARM_KEYS: frozenset[str] = frozenset(
        {
            "ActionsEnabled",
            "AlarmActions",
            "AlarmDescription",
            "AlarmName",
            "ComparisonOperator",
            "DatapointsToAlarm",
            "Dimensions",
            "EvaluateLowSampleCountPercentile",
            "EvaluationPeriods",
            "ExtendedStatistic",
            "InsufficientDataActions",
            "MetricName",
            "Metrics",
            "Namespace",
            "OKActions",
            "Period",
            "Statistic",
            "Tags",
            "Threshold",
            "ThresholdMetricId",
            "TreatMissingData",
            "Unit",
        }
    )

    def _alarm(self, resource: TemplateResource) -> PhysicalResource:
        # The properties are PutMetricAlarm's parameters; CloudFormation also accepts numbers and
        # booleans as strings.
        request = self._properties(resource, reproduced=self._ALARM_KEYS)
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in request:
                request[key] = int(request[key])
        if "Threshold" in request:
            request["Threshold"] = float(request["Threshold"])
        if "ActionsEnabled" in request:
            request["ActionsEnabled"] = str(request["ActionsEnabled"]).lower() == "true"
        name = self._name(resource, request.pop("AlarmName", None), max_length=255)
        cloudwatch = self._client("cloudwatch")
        cloudwatch.put_metric_alarm(AlarmName=name, **request)
        # AWS's state for a new alarm (moto starts at OK). Nothing publishes metrics locally, so
        # the alarm is never evaluated and keeps this state.
        cloudwatch.set_alarm_state(
            AlarmName=name,
            StateValue="INSUFFICIENT_DATA",
            StateReason="Unchecked: Initial alarm creation",
        )
        self._deployment.not_reproduced.append(
            (resource.logical_id, "Threshold", "never evaluated: no metrics are published locally")
        )
        return PhysicalResource(name, {"Arn": self._arn("cloudwatch", f"alarm:{name}")})

    # -- Lambda --------------------------------------------------------------------------------

    def _function(self, resource: TemplateResource) -> PhysicalResource:
        self._check_layers(resource)
        properties = self._properties(
            resource,
            reproduced={
                "Code",
                "Handler",
                "Runtime",
                "FunctionName",
                "Environment",
                "Timeout",
                "MemorySize",
                "LoggingConfig",
                "ReservedConcurrentExecutions",
            },
            no_local_effect={
                "Layers": "the Powertools layer: the installed aws-lambda-powertools stands in",
                "Architectures": "code runs on the host's architecture",
                "TracingConfig": "X-Ray is not emulated",
                "Role": "IAM is not enforced by the emulator",
                "Description": "documentation only",
                "Tags": "tags have no effect on the data path",
                "KmsKeyArn": "encryption at rest is not emulated",
                "EphemeralStorage": "/tmp is not limited locally",
                "VpcConfig": "networking is not emulated",
                "RuntimeManagementConfig": "the local Python runs the code",
                "CodeSigningConfigArn": "code signing is not checked locally",
                "SnapStart": "every worker starts cold",
            },
        )
        runtime = str(properties.get("Runtime", ""))
        if not runtime.startswith("python"):
            raise DeploymentError(
                f"AWS::Lambda::Function {resource.logical_id}: Runtime {runtime or '(none)'} "
                "cannot run locally; only Python functions run in the emulator"
            )
        code = properties["Code"]
        if "S3Key" not in code:
            raise DeploymentError(
                f"AWS::Lambda::Function {resource.logical_id}: Code {sorted(code)} cannot run "
                "locally; only cloud-assembly directory assets (Code.S3Key) do"
            )
        name = self._name(resource, properties.get("FunctionName"), max_length=64)
        logging_config = properties.get("LoggingConfig", {})
        spec = FunctionSpec(
            logical_id=resource.logical_id,
            name=name,
            arn=self._arn("lambda", f"function:{name}"),
            handler=str(properties["Handler"]),
            runtime=runtime,
            code_dir=self._assembly.asset_directory(str(code["S3Key"])),
            environment={
                key: str(value)
                for key, value in properties.get("Environment", {}).get("Variables", {}).items()
            },
            timeout_seconds=int(properties.get("Timeout", 3)),
            memory_mb=int(properties.get("MemorySize", 128)),
            log_group=str(logging_config.get("LogGroup", f"/aws/lambda/{name}")),
            log_format=str(logging_config.get("LogFormat", "Text")),
            application_log_level=logging_config.get("ApplicationLogLevel"),
            reserved_concurrency=(
                int(properties["ReservedConcurrentExecutions"])
                if "ReservedConcurrentExecutions" in properties
                else None
            ),
        )
        self._deployment.functions.append(spec)
        return PhysicalResource(name, {"Arn": spec.arn})

    def _check_layers(self, resource: TemplateResource) -> None:
        """Only the Powertools layer can stand in locally: the installed library replaces it."""
        parameters = self._assembly.template.get("Parameters", {})
        for layer in resource.properties.get("Layers", []):
            version: str | None = None
            if isinstance(layer, dict) and set(layer) == {"Ref"} and layer["Ref"] in parameters:
                match = _POWERTOOLS_LAYER_PARAMETER.match(
                    str(parameters[layer["Ref"]].get("Default", ""))
                )
                if match is None:
                    raise DeploymentError(_layer_error(resource, layer))
                version = match.group(1)
            elif not (isinstance(layer, str) and _POWERTOOLS_LAYER_ARN.search(layer)):
                raise DeploymentError(_layer_error(resource, layer))
            try:
                installed = importlib.metadata.version("aws-lambda-powertools")
            except importlib.metadata.PackageNotFoundError:
                raise DeploymentError(
                    f"{resource.logical_id} uses the Powertools layer: install "
                    f"aws-lambda-powertools{'==' + version if version else ''} to run it locally"
                ) from None
            if version is not None and installed != version:
                raise DeploymentError(
                    f"{resource.logical_id} uses Powertools layer {version}, but "
                    f"aws-lambda-powertools {installed} is installed; pin it to {version}"
                )

    def _event_source_mapping(self, resource: TemplateResource) -> PhysicalResource:
        properties = self._properties(
            resource,
            reproduced={
                "EventSourceArn",
                "FunctionName",
                "BatchSize",
                "MaximumBatchingWindowInSeconds",
                "Enabled",
                "FunctionResponseTypes",
                "ScalingConfig",
            },
            no_local_effect={
                "Tags": "tags have no effect on the data path",
                "MetricsConfig": "metrics are not emulated",
                "KmsKeyArn": "encryption at rest is not emulated",
            },
        )
        queue = self._deployment.queue_by_arn(str(properties.get("EventSourceArn", "")))
        if queue is None:
            raise DeploymentError(
                f"AWS::Lambda::EventSourceMapping {resource.logical_id}: EventSourceArn "
                f"{properties.get('EventSourceArn')} is not emulated; only SQS queues of this "
                "stack are"
            )
        target = str(properties["FunctionName"])
        function = next(
            (
                spec
                for spec in self._deployment.functions
                if target in {spec.name, spec.arn} or target.endswith(f":function:{spec.name}")
            ),
            None,
        )
        if function is None:
            raise DeploymentError(
                f"AWS::Lambda::EventSourceMapping {resource.logical_id}: function {target} is "
                "not a function of this stack"
            )
        mapping_id = str(uuid.uuid4())
        scaling = properties.get("ScalingConfig", {})
        self._deployment.event_sources.append(
            EventSourceSpec(
                logical_id=resource.logical_id,
                uuid=mapping_id,
                queue_arn=queue.arn,
                queue_url=queue.url,
                queue_name=queue.name,
                function_name=function.name,
                batch_size=int(properties.get("BatchSize", 10)),
                batching_window_seconds=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
                max_concurrency=(
                    int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None
                ),
                report_batch_item_failures="ReportBatchItemFailures"
                in properties.get("FunctionResponseTypes", []),
                enabled=bool(properties.get("Enabled", True)),
            )
        )
        return PhysicalResource(
            mapping_id,
            {"EventSourceMappingArn": self._arn("lambda", f"event-source-mapping:{mapping_id}")},
        )


def _skip_reason(resource_type: str) -> str | None:
    if resource_type in _SKIPPED_TYPES:
        return _SKIPPED_TYPES[resource_type]
    return next(
        (
            reason
            for prefix, reason in _SKIPPED_PREFIXES.items()
            if resource_type.startswith(prefix)
        ),
        None,
    )


def _template_bool(value: Any) -> bool:
    """A CloudFormation boolean, which templates may also spell as a string."""
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _attribute_text(value: Any) -> str:
    """A property as the string SQS/SNS attributes take (JSON documents, lower-case booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _layer_error(resource: TemplateResource, layer: Any) -> str:
    return (
        f"AWS::Lambda::Function {resource.logical_id}: layer {json.dumps(layer)} cannot be "
        "reproduced locally; only the Powertools for AWS Lambda (Python) layer can (the installed "
        "aws-lambda-powertools stands in for it)"
    )
