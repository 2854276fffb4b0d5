"""Which pipeline a command operates on: its stack on AWS or on the emulator, and its clients.

The stack's template (CloudFormation GetTemplate: the marks the construct adds) says which
resources are the pipeline's, ListStackResources their physical names, so one code path serves
AWS and the emulator, for any stack holding any number of pipelines.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
from dataclasses import dataclass, field
from typing import Any, Final

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from audit_stack import discovery, endpoints
from audit_stack.cli.errors import EXIT_ERROR, EXIT_USAGE, OperatorError, error_code
from audit_stack.lambda_code import contract

__all__ = ["DEFAULT_STACK", "Target", "TargetOptions", "resolve_target"]

DEFAULT_STACK: Final = "AuditPipelineStack"
# The emulator ignores credentials, but requests must still be signed.
_DUMMY_CREDENTIALS: Final = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_SHARDS_VARIABLE: Final = contract.ENV_EVENT_TYPE_INDEX_SHARDS


@dataclass(frozen=True)
class TargetOptions:
    """Where to look, as the operator said it (``--stack``, ``--local``...)."""

    stack: str | None = None
    pipeline: str | None = None
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    local: bool = False

    @property
    def effective_endpoint_url(self) -> str | None:
        """The emulator's URL (``--local``, ``--endpoint-url``), or None for AWS."""
        return endpoints.LOCAL_ENDPOINT_URL if self.local else self.endpoint_url

    def command_line(self, *command: str) -> str:
        """An ``audit`` command line for the same target, for hints: ``audit --local seal``."""
        words = ["audit"]
        if self.local:
            words.append("--local")
        elif self.endpoint_url:
            words += ["--endpoint-url", self.endpoint_url]
        for option in ("stack", "pipeline", "profile", "region"):
            value = getattr(self, option)
            if value:
                words += [f"--{option}", value]
        return shlex.join([*words, *command])


@dataclass
class Target:
    """The pipeline the commands operate on, its stack, and boto3 clients for where it runs."""

    stack: str
    region: str
    endpoint_url: str | None
    session: boto3.session.Session
    pipeline: str = ""
    resources: dict[str, str] = field(default_factory=dict)
    """role -> physical id (a topic's ARN, a queue's URL, a table's or a function's name)."""
    alarms: dict[str, str] = field(default_factory=dict)
    """alarm name -> logical id, for the pipeline's alarms."""
    event_type_index_shards: int = 0
    """Shards per event type of the by-type index (the recorder's setting); 0 without it."""
    event_catalogue: str | None = None
    """The pipeline's event catalogue (the recorder's EVENT_CATALOGUE); None if not set."""
    options: TargetOptions = field(default_factory=TargetOptions)
    """How the operator named this target (for hints that repeat it)."""
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str, *, config: Config | None = None) -> Any:
        """A client for the target; one per service unless a ``config`` is given."""
        if config is None and service in self._clients:
            return self._clients[service]
        base = Config(
            connect_timeout=5,
            read_timeout=30,
            # A local emulator answers at once or is not running: fail fast instead of retrying.
            retries={"mode": "standard", "total_max_attempts": 1 if self.endpoint_url else 3},
            # Loopback stays loopback whatever HTTP(S)_PROXY says.
            proxies={} if self.endpoint_url else None,
        )
        client = self.session.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=base.merge(config) if config else base,
        )
        if config is None:
            self._clients[service] = client
        return client

    @property
    def where(self) -> str:
        return f"{self.region}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    def resource(self, role: str) -> str:
        """The physical id of the pipeline's resource with this role (``discovery`` roles)."""
        if role not in self.resources:
            raise OperatorError(
                f"pipeline {self.pipeline!r} of stack {self.stack!r} has no deployed {role}"
            )
        return self.resources[role]

    def again(self, *command: str) -> str:
        """``audit`` with this target's options and ``command``, for hints."""
        return self.options.command_line(*command)


def resolve_target(options: TargetOptions) -> Target:
    """The pipeline named by ``options.pipeline`` in the stack named by ``options.stack``."""
    endpoint_url = options.effective_endpoint_url
    if endpoint_url is not None:
        # The emulator's region, not the one configured for real work.
        region = options.region or endpoints.LOCAL_REGION
        credentials = {} if options.profile else _DUMMY_CREDENTIALS
        session = _session(profile_name=options.profile, region_name=region, **credentials)
    else:
        session = _session(profile_name=options.profile)
        # AWS_REGION as the AWS CLI v2 and most SDKs read it; botocore reads AWS_DEFAULT_REGION.
        found_region = options.region or os.environ.get("AWS_REGION") or session.region_name
        if not found_region:
            raise OperatorError(
                "no AWS region: pass --region, set AWS_REGION, or set a region in your profile"
            )
        region = found_region
    target = Target(options.stack or DEFAULT_STACK, region, endpoint_url, session, options=options)
    cloudformation = target.client("cloudformation")
    wanted_pipeline = options.pipeline
    if endpoint_url is not None:
        # An emulator runs one stack: that one, whatever its name, and by default the pipeline
        # it was started for (`up --pipeline`), which it names in a tag of the stack.
        stacks = _emulator_stacks(cloudformation, options.stack)
        if options.stack is None and len(stacks) == 1:
            target.stack = stacks[0]["StackName"]
        if wanted_pipeline is None:
            wanted_pipeline = _selected_pipeline(stacks, target.stack)
    template = _template(target, cloudformation)
    pipelines = discovery.find_pipelines(template)
    try:
        pipeline = discovery.select_pipeline(
            pipelines, wanted_pipeline, where=f"stack {target.stack!r}"
        )
    except discovery.PipelineNotFoundError as error:
        # A --pipeline to give or to fix is a usage error; a stack without any is not.
        usage = options.pipeline is not None or len(pipelines) > 1
        raise OperatorError(str(error), EXIT_USAGE if usage else EXIT_ERROR) from None
    physical = {
        summary["LogicalResourceId"]: summary["PhysicalResourceId"]
        for page in cloudformation.get_paginator("list_stack_resources").paginate(
            StackName=target.stack
        )
        for summary in page["StackResourceSummaries"]
        if "PhysicalResourceId" in summary
    }
    target.pipeline = pipeline.path
    target.resources = {
        role: physical[logical_id]
        for role, logical_id in pipeline.roles.items()
        if logical_id in physical
    }
    target.alarms = {
        physical[logical_id]: logical_id for logical_id in pipeline.alarms if logical_id in physical
    }
    recorder = discovery.function_environment(template, pipeline, discovery.RECORDER)
    catalogue = recorder.get(contract.ENV_EVENT_CATALOGUE)
    target.event_catalogue = catalogue if isinstance(catalogue, str) else None
    try:
        target.event_type_index_shards = int(recorder.get(_SHARDS_VARIABLE, 0))
    except ValueError:
        target.event_type_index_shards = 0
    return target


def _emulator_stacks(cloudformation: Any, stack: str | None) -> list[dict[str, Any]]:
    """The emulator's stack (``stack``, if named) as DescribeStacks gives it. Listing every stack
    needs ``cloudformation:DescribeStacks`` on ``*``, which ``grant_read`` and ``grant_operate``
    do not give; an operator acting as such a role (``up --as``) names the ``--stack``."""
    try:
        if stack is None:
            return list(cloudformation.describe_stacks().get("Stacks", []))
        return list(cloudformation.describe_stacks(StackName=stack).get("Stacks", []))
    except ClientError as error:
        if error_code(error) == "ValidationError" and "does not exist" in str(error):
            return []  # GetTemplate then says which stack to pick
        if error_code(error) != "AccessDenied":
            raise
        if stack is None:
            raise OperatorError(
                "DescribeStacks denied: name the emulator's stack with --stack (grant_read and "
                "grant_operate let an operator read the pipeline's stack, not list every stack)"
            ) from None
        # Denied even its own stack: the selected pipeline (a stack tag) cannot be read, so
        # a stack of several pipelines needs --pipeline (select_pipeline says so).
        return []


def _selected_pipeline(stacks: list[dict[str, Any]], stack_name: str) -> str | None:
    """The pipeline the emulator's stack ``stack_name`` was started for, if it names one."""
    for stack in stacks:
        if stack.get("StackName") == stack_name:
            for tag in stack.get("Tags", []):
                if tag.get("Key") == endpoints.SELECTED_PIPELINE_TAG:
                    return str(tag.get("Value")) or None
    return None


def _template(target: Target, cloudformation: Any) -> dict[str, Any]:
    try:
        body = cloudformation.get_template(StackName=target.stack)["TemplateBody"]
    except ClientError as error:
        if error_code(error) == "ValidationError" and "does not exist" in str(error):
            hint = (
                "pick the --stack (and --region) that the emulator was started with"
                if target.endpoint_url
                else "deploy it or pick --stack / --region / --profile"
            )
            raise OperatorError(
                f"stack {target.stack!r} not found in {target.where}: {hint}"
            ) from None
        raise
    if isinstance(body, dict):
        return body
    # boto3 parses a JSON template body; a YAML one stays text and holds no pipeline marks.
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


@functools.cache
def _data_loader() -> botocore.loaders.Loader:
    return botocore.loaders.create_loader()


def _session(**options: Any) -> boto3.session.Session:
    """A boto3 session that parses AWS's service models once per process, not once per run of
    main() (tests and scripts may call it many times)."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _data_loader())
    return boto3.session.Session(botocore_session=core, **options)
