"""What a local deployment produced: the resolved specs the runtime, the event sources and the
HTTP layer work from. Plain data, no behaviour beyond lookups."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from audit_stack.local.deploy.template import PhysicalResource, StackExports


@dataclass(frozen=True)
class FunctionSpec:
    """A function of the template, resolved."""

    logical_id: str
    name: str
    arn: str
    handler: str
    runtime: str
    code_dir: Path
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    log_group: str
    log_format: str
    application_log_level: str | None
    reserved_concurrency: int | None
    layer_dirs: tuple[Path, ...] = ()
    """The ``python`` folders of the function's own layers (cloud-assembly assets), in the order
    Lambda puts them on the path."""
    powertools_layer: bool = False
    """Whether the function uses the Powertools for AWS Lambda (Python) layer."""
    construct_path: str = ""
    """Its construct's path within the stack (``aws:cdk:path``), e.g. ``Thumbnailer``."""


@dataclass(frozen=True)
class EventSourceSpec:
    """An AWS::Lambda::EventSourceMapping of the template, resolved."""

    logical_id: str
    uuid: str
    queue_arn: str
    queue_url: str
    queue_name: str
    function_name: str
    batch_size: int
    batching_window_seconds: float
    max_concurrency: int | None
    report_batch_item_failures: bool
    enabled: bool
    visibility_timeout_seconds: int = 30
    """the queue's, which bounds how long a throttled batch is retried"""


@dataclass(frozen=True)
class StreamSourceSpec:
    """An AWS::Lambda::EventSourceMapping of the template whose source is a DynamoDB stream."""

    logical_id: str
    uuid: str
    table_name: str
    stream_arn: str
    function_name: str
    batch_size: int
    batching_window_seconds: float
    starting_position: str
    """TRIM_HORIZON (every record kept) or LATEST (records written after the mapping starts)"""
    max_retry_attempts: int
    """-1: retried until it succeeds (the emulator keeps stream records for the run)"""
    report_batch_item_failures: bool
    enabled: bool


@dataclass(frozen=True)
class QueueInfo:
    """A deployed queue and where its redrive policy sends failed messages."""

    logical_id: str
    name: str
    url: str
    arn: str
    dead_letter_target_arn: str | None
    max_receive_count: int | None
    visibility_timeout_seconds: int = 30
    fifo: bool = False


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
    stream_sources: list[StreamSourceSpec] = field(default_factory=list)
    queues: list[QueueInfo] = field(default_factory=list)
    table_streams: dict[str, str] = field(default_factory=dict)
    """stream ARN -> table name, of the tables deployed with a stream"""
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    """(logical id, type, why)"""
    not_reproduced: list[tuple[str, str, str]] = field(default_factory=list)
    """(logical id, property, why it has no local effect)"""
    exports: StackExports | None = None
    """What the stacks deployed before and with this one export (``Fn::ImportValue`` and
    ``Fn::GetStackOutput`` resolve against it; the policy store reads the same)."""
    dependencies: list[Deployment] = field(default_factory=list)
    """The stacks this one depends on, deployed before it, in that order."""

    @property
    def stacks(self) -> list[Deployment]:
        """Every stack deployed: the dependencies in order, then this one."""
        return [*self.dependencies, self]

    @property
    def created_types(self) -> dict[str, str]:
        """Logical id -> type of every resource created (the skipped ones left out)."""
        skipped = {logical_id for logical_id, _, _ in self.skipped}
        return {
            logical_id: kind
            for logical_id, kind in self.resource_types.items()
            if logical_id not in skipped
        }

    def queue_by_arn(self, arn: str) -> QueueInfo | None:
        return next((queue for queue in self.queues if queue.arn == arn), None)
