"""What a local deployment produced: the resolved specs the runtime, the event sources and the
HTTP layer work from. Plain data, no behaviour beyond lookups."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from audit_stack.local.deploy.template import PhysicalResource


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
    queues: list[QueueInfo] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    """(logical id, type, why)"""
    not_reproduced: list[tuple[str, str, str]] = field(default_factory=list)
    """(logical id, property, why it has no local effect)"""

    def queue_by_arn(self, arn: str) -> QueueInfo | None:
        return next((queue for queue in self.queues if queue.arn == arn), None)
