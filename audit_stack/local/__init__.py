"""Run the synthesized audit pipeline end to end on this machine: an embedded AWS emulator.

``LocalAuditPipeline`` deploys a cloud assembly's stack into moto's server (in-process, loopback
only), runs each Lambda function's asset in its own worker processes and polls SQS event sources
as Lambda does. This package never imports aws_cdk: it only reads the synthesized template.
"""

from audit_stack.discovery import PipelineNotFoundError
from audit_stack.local.functions import Invocation
from audit_stack.local.pipeline import FunctionInvocationError, LocalAuditPipeline
from audit_stack.local.template import DeploymentError

__all__ = [
    "DeploymentError",
    "FunctionInvocationError",
    "Invocation",
    "LocalAuditPipeline",
    "PipelineNotFoundError",
]
