"""The configurations the benchmark runs side by side, and what their templates say about them.

Settings that matter for cost (memory, architecture, indexes, batch size) are read from each
synthesized template, never restated here: the template is what would be deployed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit_stack import lambda_code, synth
from audit_stack.lambda_code import contract
from bench import solutions_venv
from bench.original.app import STACK_NAME as ORIGINAL_STACK_NAME
from bench.peers.app import (
    NO_INDEX_STACK_NAME,
    SOLUTIONS_PACKAGES_STACK_NAME,
    SOLUTIONS_STACK_NAME,
)

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = ROOT / "lambdas"
PROJECT_STACK_NAME = "AuditPipelineStack"
_SYNTH_TIMEOUT_SECONDS = 600
# Lambda's defaults when a template leaves them out.
_DEFAULT_MEMORY_MB = 128
_DEFAULT_ARCHITECTURE = "x86_64"
_DEFAULT_LOG_FORMAT = "Text"
# Lambda's default system log level (its JSON format filters by it; Text has no levels).
_DEFAULT_SYSTEM_LOG_LEVEL = "INFO"


@dataclass(frozen=True)
class FunctionFacts:
    """A function of a template: what its cost depends on."""

    logical_id: str
    memory_mb: int
    architecture: str
    log_format: str = _DEFAULT_LOG_FORMAT
    """Text or JSON: the form of Lambda's own START/REPORT lines in the log group"""
    system_log_level: str = _DEFAULT_SYSTEM_LOG_LEVEL
    """DEBUG, INFO or WARN (JSON format only): WARN writes no platform.start/platform.report"""
    tracing: bool = False
    """X-Ray active tracing (adds the trace id to Lambda's REPORT line)"""
    data_protection: bool = False
    """its log group has a data protection policy (every ingested byte is scanned)"""


@dataclass(frozen=True)
class TemplateFacts:
    """What a stack's template configures for the data path."""

    functions: dict[str, FunctionFacts]
    global_secondary_indexes: int
    batch_size: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class CriticalPath:
    """How a configuration's recorder spends its AWS calls: the duration model's input.

    :param concurrent_writes: writes of one batch in flight at once (1: one after another).
    """

    concurrent_writes: int


# The seed's handler (bench/original/functions), which the Solutions Constructs peer runs too.
SEQUENTIAL_WRITES = CriticalPath(concurrent_writes=1)


def project_recorder_path() -> CriticalPath:
    """The project recorder's: a batch's events go to DynamoDB in one BatchExecuteStatement of
    up to MAX_STATEMENTS_PER_CALL INSERTs, all in flight at once (it sends nothing else: the
    table's stream reaches the sealer). Idempotent events' transactions, MAX_CONCURRENT_WRITES
    at a time, are not in the bench's mix."""
    recorder = lambda_code.audit_events_module("record_audit_event")
    return CriticalPath(concurrent_writes=int(recorder.MAX_STATEMENTS_PER_CALL))


@dataclass(frozen=True)
class Configuration:
    """One side of the comparison: a stack in a cloud assembly and where its records keep time.

    :param subject_attribute: the item attribute naming the account (its e-mail or pseudonym).
    :param occurred_attribute: when the publisher created the event (before publishing).
    :param recorded_attribute: when the recorder wrote the item.
    """

    key: str
    label: str
    assembly_dir: Path
    stack_name: str
    subject_attribute: str
    occurred_attribute: str
    recorded_attribute: str
    recorder_path: CriticalPath

    @property
    def key_attributes(self) -> tuple[str, ...]:
        """The table's key attributes (partition key first), from the template."""
        for resource in self.template["Resources"].values():
            if resource["Type"] == "AWS::DynamoDB::Table":
                schema = resource["Properties"]["KeySchema"]
                return tuple(
                    key["AttributeName"]
                    for key in sorted(schema, key=lambda key: key["KeyType"] != "HASH")
                )
        raise ValueError(f"{self.stack_name} has no DynamoDB table")

    @property
    def template(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (self.assembly_dir / f"{self.stack_name}.template.json").read_text()
        )
        return data

    def facts(self) -> TemplateFacts:
        """Memory and architecture per function, index count, batch settings."""
        resources = self.template["Resources"]
        functions: dict[str, FunctionFacts] = {}
        indexes = 0
        batch_size = 10
        report_failures = False
        protected_log_groups = {
            logical_id
            for logical_id, resource in resources.items()
            if resource["Type"] == "AWS::Logs::LogGroup"
            and resource.get("Properties", {}).get("DataProtectionPolicy")
        }
        for logical_id, resource in resources.items():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::Lambda::Function":
                logging = properties.get("LoggingConfig") or {}
                log_group = logging.get("LogGroup")
                functions[logical_id] = FunctionFacts(
                    logical_id=logical_id,
                    memory_mb=int(properties.get("MemorySize", _DEFAULT_MEMORY_MB)),
                    architecture=(properties.get("Architectures") or [_DEFAULT_ARCHITECTURE])[0],
                    log_format=str(logging.get("LogFormat", _DEFAULT_LOG_FORMAT)),
                    system_log_level=str(logging.get("SystemLogLevel", _DEFAULT_SYSTEM_LOG_LEVEL)),
                    tracing=(properties.get("TracingConfig") or {}).get("Mode") == "Active",
                    data_protection=isinstance(log_group, dict)
                    and log_group.get("Ref") in protected_log_groups,
                )
            elif resource["Type"] == "AWS::DynamoDB::Table":
                indexes += len(properties.get("GlobalSecondaryIndexes", []))
            elif resource["Type"] == "AWS::Lambda::EventSourceMapping":
                batch_size = int(properties.get("BatchSize", 10))
                report_failures = "ReportBatchItemFailures" in properties.get(
                    "FunctionResponseTypes", []
                )
        return TemplateFacts(functions, indexes, batch_size, report_failures)


def project(assembly_dir: Path) -> Configuration:
    """The project's AuditStack as `cdk synth` wrote it (the recorder's item schema)."""
    if not (assembly_dir / f"{PROJECT_STACK_NAME}.template.json").is_file():
        raise SystemExit(f"{assembly_dir} has no {PROJECT_STACK_NAME}: run `make synth` first")
    return Configuration(
        key="project",
        label="project (AuditStack, default)",
        assembly_dir=assembly_dir,
        stack_name=PROJECT_STACK_NAME,
        subject_attribute=contract.PARTITION_KEY,
        occurred_attribute="occurred_at",
        recorded_attribute=contract.RECORDED_AT_ATTRIBUTE,
        recorder_path=project_recorder_path(),
    )


def _synthesize(app_arguments: list[str], outdir: Path) -> None:
    """Run a CDK app module in a child process (so that this process never starts jsii's
    Node.js kernel)."""
    synth.synthesize_python_app(
        ["-m", *app_arguments, str(outdir)], outdir, cwd=ROOT, timeout=_SYNTH_TIMEOUT_SECONDS
    )


def original(outdir: Path) -> Configuration:
    """The original solution's configuration, synthesized into ``outdir``."""
    _synthesize(["bench.original.app"], outdir)
    return Configuration(
        key="original",
        label="seed (Serverless config)",
        assembly_dir=outdir,
        stack_name=ORIGINAL_STACK_NAME,
        subject_attribute="email",
        occurred_attribute="deletedAt",
        recorded_attribute="recordedAt",
        recorder_path=SEQUENTIAL_WRITES,
    )


def project_without_index(outdir: Path) -> Configuration:
    """The project's AuditStack with ``event_type_index=False``, synthesized into ``outdir``."""
    _synthesize(["bench.peers.app", "no-index"], outdir)
    return Configuration(
        key="no_index",
        label="project, index off",
        assembly_dir=outdir,
        stack_name=NO_INDEX_STACK_NAME,
        subject_attribute=contract.PARTITION_KEY,
        occurred_attribute="occurred_at",
        recorded_attribute=contract.RECORDED_AT_ATTRIBUTE,
        recorder_path=project_recorder_path(),
    )


def solutions_constructs(outdir: Path) -> tuple[Configuration, str]:
    """The AWS Solutions Constructs peer in ``outdir``, and how it was built.

    From the real 2.105.0 packages in the side environment (``bench/solutions_venv.py``); when
    that environment cannot be made, the hand-built composition (``bench/peers/solutions.py``),
    labelled as such, and the reason in the second value.
    """
    try:
        environment = solutions_venv.ensure()
        solutions_venv.synthesize(environment, outdir)
    except solutions_venv.SideEnvironmentError as error:
        _synthesize(["bench.peers.app", "solutions-constructs"], outdir)
        label = "AWS Solutions Constructs (HAND-BUILT from their defaults)"
        stack_name = SOLUTIONS_STACK_NAME
        how = f"hand-built (bench/peers/solutions.py): the side environment failed: {error}"
    else:
        label = "AWS Solutions Constructs 2.105.0 (packages)"
        stack_name = SOLUTIONS_PACKAGES_STACK_NAME
        how = "synthesized from the packages in bench/.venv-solutions: " + ", ".join(
            environment.requirements
        )
    return Configuration(
        key="solutions",
        label=label,
        assembly_dir=outdir,
        stack_name=stack_name,
        subject_attribute="email",
        occurred_attribute="deletedAt",
        recorded_attribute="recordedAt",
        recorder_path=SEQUENTIAL_WRITES,
    ), how
