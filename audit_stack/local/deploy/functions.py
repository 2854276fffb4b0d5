"""Deploys Lambda functions and their SQS event-source mappings, with the checks
CreateFunction and CreateEventSourceMapping make."""

from __future__ import annotations

import importlib.metadata
import json
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audit_stack.local.deploy.context import DeployContext, template_bool
from audit_stack.local.deploy.model import EventSourceSpec, FunctionSpec, StreamSourceSpec
from audit_stack.local.deploy.template import DeploymentError, PhysicalResource, TemplateResource

_POWERTOOLS_LAYER_PARAMETER = re.compile(r"^/aws/service/powertools/python/[^/]+/[^/]+/(.+)$")
_POWERTOOLS_LAYER_ARN = re.compile(r":layer:AWSLambdaPowertoolsPython")
# Lambda's documented reserved environment variables: CreateFunction refuses to set them.
RESERVED_ENVIRONMENT_KEYS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
# CreateFunction's limits (Lambda quotas:
# docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
MIN_TIMEOUT_SECONDS = 1
MAX_TIMEOUT_SECONDS = 900
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240
MAX_ENVIRONMENT_BYTES = 4 * 1024
# CreateEventSourceMapping's limits for an SQS source.
MAX_BATCH_SIZE_WITHOUT_WINDOW = 10
MAX_BATCH_SIZE = 10_000
MAX_BATCHING_WINDOW_SECONDS = 300
MIN_MAXIMUM_CONCURRENCY = 2
MAX_MAXIMUM_CONCURRENCY = 1000
MAX_FIFO_BATCH_SIZE = 10


def function_errors(*, timeout: int, memory_mb: int, variables: Mapping[str, Any]) -> list[str]:
    """What CreateFunction refuses in a function's configuration, every problem at once."""
    errors: list[str] = []
    if not MIN_TIMEOUT_SECONDS <= timeout <= MAX_TIMEOUT_SECONDS:
        errors.append(
            f"Timeout {timeout} must be between {MIN_TIMEOUT_SECONDS} and {MAX_TIMEOUT_SECONDS}"
        )
    if not MIN_MEMORY_MB <= memory_mb <= MAX_MEMORY_MB:
        errors.append(f"MemorySize {memory_mb} must be between {MIN_MEMORY_MB} and {MAX_MEMORY_MB}")
    reserved = reserved_environment_keys(variables)
    if reserved:
        errors.append(
            f"Environment.Variables sets reserved key(s) {', '.join(reserved)}, which Lambda "
            "refuses to modify"
        )
    size = environment_size(variables)
    if size > MAX_ENVIRONMENT_BYTES:
        errors.append(
            f"Environment.Variables take {size} bytes; Lambda allows at most "
            f"{MAX_ENVIRONMENT_BYTES} (4 KB) for all of them"
        )
    return errors


def environment_size(variables: Mapping[str, Any]) -> int:
    """The size Lambda counts against its 4 KB limit: the variables as a JSON object, UTF-8."""
    document = {str(key): str(value) for key, value in variables.items()}
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def reserved_environment_keys(variables: Mapping[str, Any]) -> list[str]:
    """The variables a function may not set, as CreateFunction names them."""
    return sorted(key for key in variables if key in RESERVED_ENVIRONMENT_KEYS)


def event_source_mapping_errors(
    *,
    batch_size: int,
    batching_window_seconds: float,
    max_concurrency: int | None,
    queue_visibility_timeout: int,
    function_timeout: int,
    fifo: bool = False,
) -> list[str]:
    """What CreateEventSourceMapping refuses for an SQS queue, every problem at once."""
    errors: list[str] = []
    if fifo:
        errors.append(
            "a FIFO queue as an event source is not emulated (Lambda's in-order retries within "
            "a message group are not reproduced); use a standard queue locally"
        )
        # What Lambda itself refuses for a FIFO source: more than 10 per batch, any window.
        if batch_size > MAX_FIFO_BATCH_SIZE:
            errors.append(
                f"BatchSize {batch_size} must be at most {MAX_FIFO_BATCH_SIZE} for a FIFO queue"
            )
        if batching_window_seconds > 0:
            errors.append(
                "MaximumBatchingWindowInSeconds is not supported for a FIFO queue "
                f"(got {batching_window_seconds:g})"
            )
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        errors.append(f"BatchSize {batch_size} must be between 1 and {MAX_BATCH_SIZE}")
    if batch_size > MAX_BATCH_SIZE_WITHOUT_WINDOW and batching_window_seconds <= 0:
        errors.append(
            f"BatchSize {batch_size} over {MAX_BATCH_SIZE_WITHOUT_WINDOW} needs "
            "MaximumBatchingWindowInSeconds of at least 1"
        )
    if not 0 <= batching_window_seconds <= MAX_BATCHING_WINDOW_SECONDS:
        errors.append(
            f"MaximumBatchingWindowInSeconds {batching_window_seconds:g} must be between 0 and "
            f"{MAX_BATCHING_WINDOW_SECONDS}"
        )
    if max_concurrency is not None and not (
        MIN_MAXIMUM_CONCURRENCY <= max_concurrency <= MAX_MAXIMUM_CONCURRENCY
    ):
        errors.append(
            f"ScalingConfig.MaximumConcurrency {max_concurrency} must be between "
            f"{MIN_MAXIMUM_CONCURRENCY} and {MAX_MAXIMUM_CONCURRENCY}"
        )
    if queue_visibility_timeout < function_timeout:
        errors.append(
            f"the queue's visibility timeout ({queue_visibility_timeout} s) is less than the "
            f"function timeout ({function_timeout} s)"
        )
    return errors


def deploy_function(ctx: DeployContext, resource: TemplateResource) -> PhysicalResource:
    powertools_layer, layer_dirs = _layers(ctx, resource)
    properties = ctx.properties(
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
            "Layers": "layers are put on the function's path, the Powertools layer's stand-in "
            "being the installed aws-lambda-powertools",
            "Architectures": "code runs on the host's architecture",
            "TracingConfig": "X-Ray is not emulated",
            "Role": "its calls are made as this role (audit_stack.local.access)",
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
    variables = properties.get("Environment", {}).get("Variables", {})
    errors = function_errors(
        timeout=int(properties.get("Timeout", 3)),
        memory_mb=int(properties.get("MemorySize", 128)),
        variables=variables,
    )
    if errors:
        # As CloudFormation fails the stack when CreateFunction refuses the function.
        raise DeploymentError(f"AWS::Lambda::Function {resource.logical_id}: " + "; ".join(errors))
    name = ctx.name(resource, properties.get("FunctionName"), max_length=64)
    logging_config = properties.get("LoggingConfig", {})
    spec = FunctionSpec(
        logical_id=resource.logical_id,
        name=name,
        arn=ctx.arn("lambda", f"function:{name}"),
        handler=str(properties["Handler"]),
        runtime=runtime,
        code_dir=ctx.assembly.asset_directory(str(code["S3Key"])),
        environment={key: str(value) for key, value in variables.items()},
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
        layer_dirs=layer_dirs,
        powertools_layer=powertools_layer,
        construct_path=_construct_path(ctx, resource),
    )
    ctx.deployment.functions.append(spec)
    return PhysicalResource(name, {"Arn": spec.arn})


def deploy_layer_version(ctx: DeployContext, resource: TemplateResource) -> PhysicalResource:
    """A layer whose content is a folder asset of the cloud assembly (``Code.from_asset``)."""
    properties = ctx.properties(
        resource,
        reproduced={"Content", "LayerName"},
        no_local_effect={
            "CompatibleRuntimes": "the local Python runs every function",
            "CompatibleArchitectures": "code runs on the host's architecture",
            "Description": "documentation only",
            "LicenseInfo": "documentation only",
        },
    )
    content = properties["Content"]
    if "S3Key" not in content:
        raise DeploymentError(
            f"AWS::Lambda::LayerVersion {resource.logical_id}: Content {sorted(content)} cannot "
            "be used locally; only cloud-assembly directory assets (Content.S3Key) can"
        )
    folder = ctx.assembly.asset_directory(str(content["S3Key"]), what="Content.S3Key")
    name = ctx.name(resource, properties.get("LayerName"), max_length=140)
    arn = ctx.arn("lambda", f"layer:{name}:1")
    ctx.layers[arn] = folder
    return PhysicalResource(arn, {"LayerVersionArn": arn})


def _layers(ctx: DeployContext, resource: TemplateResource) -> tuple[bool, tuple[Path, ...]]:
    """Whether the function uses the Powertools layer (the installed library stands in for it),
    and the folders of its other layers, which must be layers of the stacks deployed locally.

    Lambda extracts every layer into /opt, a later layer's files over an earlier one's, and puts
    /opt/python and /opt/python/lib/pythonX.Y/site-packages on the path: here, each layer's
    folders, the later layers first."""
    parameters = ctx.assembly.template.get("Parameters", {})
    powertools = False
    folders: list[Path] = []
    for layer in resource.properties.get("Layers", []):
        version: str | None = None
        if isinstance(layer, dict) and set(layer) == {"Ref"} and layer["Ref"] in parameters:
            match = _POWERTOOLS_LAYER_PARAMETER.match(
                str(parameters[layer["Ref"]].get("Default", ""))
            )
            if match is None:
                raise DeploymentError(_layer_error(resource, layer))
            version = match.group(1)
        elif isinstance(layer, str) and _POWERTOOLS_LAYER_ARN.search(layer):
            pass
        else:
            arn = ctx.resolver.resolve(layer)
            if not isinstance(arn, str) or arn not in ctx.layers:
                raise DeploymentError(_layer_error(resource, layer))
            folders[:0] = _layer_python_dirs(ctx.layers[arn])
            continue
        powertools = True
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
    return powertools, tuple(folders)


def _construct_path(ctx: DeployContext, resource: TemplateResource) -> str:
    """``Stack/Thumbnailer/Resource`` (CDK's path metadata) as ``Thumbnailer``; "" without it."""
    path = str(resource.metadata.get("aws:cdk:path", ""))
    path = path.removeprefix(f"{ctx.assembly.stack_name}/")
    return path.removesuffix("/Resource") if path else ""


def _layer_python_dirs(folder: Path) -> list[Path]:
    """The folders of a layer that Lambda's Python runtime puts on the path."""
    python = folder / "python"
    return [*sorted(python.glob("lib/python3*/site-packages")), python]


def deploy_event_source_mapping(ctx: DeployContext, resource: TemplateResource) -> PhysicalResource:
    properties = ctx.properties(
        resource,
        reproduced={
            "EventSourceArn",
            "FunctionName",
            "BatchSize",
            "MaximumBatchingWindowInSeconds",
            "Enabled",
            "FunctionResponseTypes",
            "ScalingConfig",
            "StartingPosition",
            "MaximumRetryAttempts",
        },
        no_local_effect={
            "Tags": "tags have no effect on the data path",
            "MetricsConfig": "metrics are not emulated",
            "KmsKeyArn": "encryption at rest is not emulated",
        },
    )
    source_arn = str(properties.get("EventSourceArn", ""))
    if source_arn in ctx.deployment.table_streams:
        return _stream_mapping(ctx, resource, properties, source_arn)
    queue = ctx.deployment.queue_by_arn(source_arn)
    if queue is None:
        raise DeploymentError(
            f"AWS::Lambda::EventSourceMapping {resource.logical_id}: EventSourceArn "
            f"{properties.get('EventSourceArn')} is not emulated; only SQS queues and "
            "DynamoDB table streams of this stack are"
        )
    target = str(properties["FunctionName"])
    function = _mapped_function(ctx, target)
    if function is None:
        raise DeploymentError(
            f"AWS::Lambda::EventSourceMapping {resource.logical_id}: function {target} is "
            "not a function of this stack"
        )
    scaling = properties.get("ScalingConfig", {})
    batch_size = int(properties.get("BatchSize", 10))
    batching_window = float(properties.get("MaximumBatchingWindowInSeconds", 0))
    max_concurrency = (
        int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None
    )
    errors = event_source_mapping_errors(
        batch_size=batch_size,
        batching_window_seconds=batching_window,
        max_concurrency=max_concurrency,
        queue_visibility_timeout=queue.visibility_timeout_seconds,
        function_timeout=function.timeout_seconds,
        fifo=queue.fifo,
    )
    _refuse_mapping(resource, errors)
    mapping_id = str(uuid.uuid4())
    ctx.deployment.event_sources.append(
        EventSourceSpec(
            logical_id=resource.logical_id,
            uuid=mapping_id,
            queue_arn=queue.arn,
            queue_url=queue.url,
            queue_name=queue.name,
            function_name=function.name,
            batch_size=batch_size,
            batching_window_seconds=batching_window,
            max_concurrency=max_concurrency,
            report_batch_item_failures="ReportBatchItemFailures"
            in properties.get("FunctionResponseTypes", []),
            enabled=template_bool(properties.get("Enabled", True)),
            visibility_timeout_seconds=queue.visibility_timeout_seconds,
        )
    )
    return _mapping_resource(ctx, mapping_id)


# CreateEventSourceMapping's limits for a DynamoDB stream source (Lambda's API reference).
_STREAM_MAX_BATCH = 10_000
_STREAM_MAX_WINDOW_SECONDS = 300
_STREAM_MAX_RETRIES = 10_000


def _refuse_mapping(resource: TemplateResource, errors: list[str]) -> None:
    """As CloudFormation fails the stack when CreateEventSourceMapping refuses the mapping:
    every problem at once."""
    if errors:
        raise DeploymentError(
            f"AWS::Lambda::EventSourceMapping {resource.logical_id}: " + "; ".join(errors)
        )


def _mapping_resource(ctx: DeployContext, mapping_id: str) -> PhysicalResource:
    return PhysicalResource(
        mapping_id,
        {"EventSourceMappingArn": ctx.arn("lambda", f"event-source-mapping:{mapping_id}")},
    )


def _mapped_function(ctx: DeployContext, target: str) -> FunctionSpec | None:
    """The stack's function a mapping's FunctionName names (a name, an ARN or a partial ARN)."""
    return next(
        (
            spec
            for spec in ctx.deployment.functions
            if target in {spec.name, spec.arn} or target.endswith(f":function:{spec.name}")
        ),
        None,
    )


def _stream_mapping(
    ctx: DeployContext, resource: TemplateResource, properties: dict[str, Any], stream_arn: str
) -> PhysicalResource:
    """A DynamoDB stream -> function mapping (esm/stream.py runs it). Properties the emulator
    does not reproduce (bisecting, destinations, filters, record age, parallelization) were
    refused by ``ctx.properties`` already."""
    target = str(properties["FunctionName"])
    function = _mapped_function(ctx, target)
    errors: list[str] = []
    if function is None:
        errors.append(f"function {target} is not a function of this stack")
    batch_size = int(properties.get("BatchSize", 100))
    window = float(properties.get("MaximumBatchingWindowInSeconds", 0))
    position = str(properties.get("StartingPosition", ""))
    retries = int(properties.get("MaximumRetryAttempts", -1))
    if not 1 <= batch_size <= _STREAM_MAX_BATCH:
        errors.append(f"BatchSize {batch_size} is not between 1 and {_STREAM_MAX_BATCH}")
    if not 0 <= window <= _STREAM_MAX_WINDOW_SECONDS:
        errors.append(
            f"MaximumBatchingWindowInSeconds {window:g} is not between 0 and "
            f"{_STREAM_MAX_WINDOW_SECONDS}"
        )
    if position not in ("TRIM_HORIZON", "LATEST"):
        errors.append(
            f"StartingPosition {position or '(none)'} must be TRIM_HORIZON or LATEST for a stream"
        )
    if not -1 <= retries <= _STREAM_MAX_RETRIES:
        errors.append(f"MaximumRetryAttempts {retries} is not between -1 and {_STREAM_MAX_RETRIES}")
    _refuse_mapping(resource, errors)
    assert function is not None  # else refused above
    mapping_id = str(uuid.uuid4())
    ctx.deployment.stream_sources.append(
        StreamSourceSpec(
            logical_id=resource.logical_id,
            uuid=mapping_id,
            table_name=ctx.deployment.table_streams[stream_arn],
            stream_arn=stream_arn,
            function_name=function.name,
            batch_size=batch_size,
            batching_window_seconds=window,
            starting_position=position,
            max_retry_attempts=retries,
            report_batch_item_failures="ReportBatchItemFailures"
            in properties.get("FunctionResponseTypes", []),
            enabled=template_bool(properties.get("Enabled", True)),
        )
    )
    return _mapping_resource(ctx, mapping_id)


def _layer_error(resource: TemplateResource, layer: Any) -> str:
    return (
        f"AWS::Lambda::Function {resource.logical_id}: layer {json.dumps(layer)} cannot be "
        "reproduced locally; only the Powertools for AWS Lambda (Python) layer (the installed "
        "aws-lambda-powertools stands in for it) and layers of the cloud assembly's stacks "
        "(lambda.LayerVersion with Code.from_asset) can"
    )
