"""Run the synthesized audit pipeline end to end on this machine: an embedded AWS emulator.

``LocalAuditPipeline`` deploys a cloud assembly's stack into moto's server (in-process, loopback
only), runs each Lambda function's asset in its own worker processes and polls SQS event sources
as Lambda does. This package never imports aws_cdk: it only reads the synthesized template.

Layout: ``deploy/`` (template -> resources, one handler per type), ``http/`` (transport only:
the endpoint, operation naming, errors), ``services/`` (the APIs the emulator answers itself),
``instruments/`` (faults and metering), ``esm/`` (event-source mappings), ``runtime/`` (Lambda
workers: worker, pool, registry), ``access/`` (IAM), ``control/`` (moto's lock and clock,
run_until_idle), and ``pipeline.py``, the wiring. docs/EMULATOR.md describes it all.
"""

from audit_stack.discovery import PipelineNotFoundError
from audit_stack.local.deploy.template import DeploymentError
from audit_stack.local.http.server import PortUnavailableError
from audit_stack.local.instruments.faults import DYNAMODB_WRITE_FAULTS, FaultInjector, InjectedFault
from audit_stack.local.instruments.metering import OperationCount
from audit_stack.local.pipeline import (
    FunctionInvocationError,
    LocalAuditPipeline,
    PipelineNotRunningError,
)
from audit_stack.local.runtime.registry import Invocation

__all__ = [
    "DYNAMODB_WRITE_FAULTS",
    "DeploymentError",
    "FaultInjector",
    "FunctionInvocationError",
    "InjectedFault",
    "Invocation",
    "LocalAuditPipeline",
    "OperationCount",
    "PipelineNotFoundError",
    "PipelineNotRunningError",
    "PortUnavailableError",
]
