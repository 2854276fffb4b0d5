"""The pipeline's Lambda functions: runtime, code asset, Powertools layer, and one builder that
gives each function its own log group, its own role and the Powertools settings."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from audit_stack.construct import compat
from audit_stack.construct.function_code import function_code_dir
from audit_stack.lambda_code import contract

__all__ = [
    "ARCHITECTURE",
    "MEMORY_SIZE_MB",
    "POWERTOOLS_VERSION",
    "PUBLISHER_HANDLER",
    "RECORDER_HANDLER",
    "RUNTIME",
    "SEALER_HANDLER",
    "FunctionFactory",
    "function",
    "function_factory",
]

# The Powertools layer is resolved at deploy time from the public SSM parameter that the
# Powertools team publishes for each release; keep this equal to requirements-dev.txt's pin
# (a test checks it) so local runs and Lambda run the same library.
POWERTOOLS_VERSION = "3.37.0"
RUNTIME = compat.PYTHON_RUNTIME
ARCHITECTURE = lambda_.Architecture.ARM_64
MEMORY_SIZE_MB = 256

PUBLISHER_HANDLER = "audit_events.delete_account.handler"
RECORDER_HANDLER = "audit_events.record_audit_event.handler"
SEALER_HANDLER = "audit_events.seal_records.handler"

FunctionFactory = Callable[..., lambda_.Function]
"""``function`` with the code, layer, log retention and removal policy already given."""


def function_factory(
    scope: Construct, *, log_retention: logs.RetentionDays, removal_policy: RemovalPolicy
) -> FunctionFactory:
    """Builds the functions of ``scope``: one code asset and one Powertools layer for all."""
    # The Lambda code and the libraries it vendors (function_code.py).
    code = lambda_.Code.from_asset(str(function_code_dir()))
    layer = lambda_.LayerVersion.from_layer_version_arn(
        scope,
        "PowertoolsLayer",
        ssm.StringParameter.value_for_string_parameter(
            scope,
            f"/aws/service/powertools/python/arm64/{RUNTIME.name}/{POWERTOOLS_VERSION}",
        ),
    )
    return partial(
        function,
        scope,
        code=code,
        layer=layer,
        log_retention=log_retention,
        removal_policy=removal_policy,
    )


def function(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    handler: str,
    code: lambda_.Code,
    layer: lambda_.ILayerVersion,
    timeout: Duration,
    environment: dict[str, str],
    log_retention: logs.RetentionDays,
    removal_policy: RemovalPolicy,
    system_log_level: lambda_.SystemLogLevel = lambda_.SystemLogLevel.INFO,
) -> lambda_.Function:
    """A traced, JSON-logging function whose role may write to its own log group only.

    ``system_log_level`` filters Lambda's own lines: INFO (Lambda's default) writes a
    ``platform.start`` and a ``platform.report`` per invocation; WARN writes neither.
    """
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=log_retention,
        removal_policy=removal_policy,
        # A backstop, not the control: the code never logs an address, but a dependency at
        # DEBUG or a future change might; CloudWatch Logs then masks it for every reader
        # without logs:Unmask and reports the finding.
        data_protection_policy=logs.DataProtectionPolicy(
            name=f"{construct_id}-personal-data",
            description="Mask e-mail addresses in the function's logs (audit pipeline)",
            identifiers=[logs.DataIdentifier.EMAILADDRESS],
        ),
    )
    # An explicit role instead of AWSLambdaBasicExecutionRole: it may write to its own log
    # group only.
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"Execution role of {construct_id}",
    )
    log_group.grant_write(role)
    created = lambda_.Function(
        scope,
        construct_id,
        description=description,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        code=code,
        layers=[layer],
        memory_size=MEMORY_SIZE_MB,
        timeout=timeout,
        role=role,
        log_group=log_group,
        logging_format=lambda_.LoggingFormat.JSON,
        system_log_level_v2=system_log_level,
        tracing=lambda_.Tracing.ACTIVE,
        environment={
            # The handlers' metrics land where the construct's alarms look (the contract).
            "POWERTOOLS_SERVICE_NAME": contract.SERVICE_NAME,
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_METRICS_NAMESPACE": contract.METRICS_NAMESPACE,
            **environment,
        },
    )
    compat.acknowledge(
        role,
        (
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level "
            "permissions; tracing is on for every function.",
        ),
        (
            f"AwsSolutions-IAM5[Resource::<{_logical_id(log_group)}>:*]",
            "Log streams are created per execution environment with generated names "
            "inside the function's own log group.",
        ),
    )
    return created


def _logical_id(log_group: logs.LogGroup) -> str:
    return Stack.of(log_group).get_logical_id(log_group.node.default_child)  # type: ignore[arg-type]
