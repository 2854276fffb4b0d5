"""The Lambda layer that ships the ``AuditPublisher`` client to a producer's function.

Staged at synthesis from the installed package, with no Docker and no network: the layer's
``python/`` folder (``/opt/python`` on Lambda, on the runtime's path) holds ``audit_stack``'s
lazy ``__init__``, ``publisher.py`` and ``lambda_code.py`` (through which the client loads the
Lambda modules), and the Lambda code package ``audit_stack/lambdas/audit_events`` that
``lambda_code.audit_events_module`` imports. Those need only the standard library and boto3,
which the Lambda Python runtime provides, ``fastjsonschema`` (pure Python), with which the
client checks an event's details against its type's schema, and the libraries the Lambda code
vendors (``function_code.VENDORED_DISTRIBUTIONS``: ``idna``, for e-mail domains); a producer's
function need not have the Powertools layer that ships fastjsonschema to the pipeline's own
functions. Nothing of aws_cdk, rich or cryptography goes in.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Protocol

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from audit_stack.construct import compat
from audit_stack.construct.function_code import VENDORED_DISTRIBUTIONS, copy_distribution
from audit_stack.construct.functions import ARCHITECTURE
from audit_stack.lambda_code import lambda_code_dir

__all__ = [
    "CLIENT_MODULES",
    "CLIENT_RUNTIMES",
    "LAYER_ID",
    "publisher_layer",
    "stage_client",
    "wire_publisher",
]

# The client and what it imports from audit_stack (publisher.py -> lambda_code.py); the
# package's __init__ only declares lazy exports.
CLIENT_MODULES = ("__init__.py", "publisher.py", "lambda_code.py")
LAYER_ID = "AuditPublisherLayer"
# The Lambda runtimes a producer's function may have: every Python the client runs on (the
# package's requires-python, >= 3.11), not only the pipeline's own functions' runtime, so that an
# app's existing functions take the layer as they are.
CLIENT_RUNTIMES = (
    lambda_.Runtime.PYTHON_3_11,
    lambda_.Runtime.PYTHON_3_12,
    lambda_.Runtime.PYTHON_3_13,
    compat.PYTHON_RUNTIME,
)
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def stage_client(destination: Path) -> Path:
    """Write the layer's content (``python/audit_stack/...``) under ``destination``."""
    package = destination / "python" / "audit_stack"
    package.mkdir(parents=True)
    for name in CLIENT_MODULES:
        shutil.copy2(_PACKAGE_DIR / name, package / name)
    lambdas = package / "lambdas"
    lambdas.mkdir()
    (lambdas / "__init__.py").write_text('"""The Lambda code the client runs."""\n')
    shutil.copytree(
        lambda_code_dir() / "audit_events",
        lambdas / "audit_events",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    for name in ("fastjsonschema", *VENDORED_DISTRIBUTIONS):
        copy_distribution(name, destination / "python")
    return destination


@cache
def _staged() -> Path:
    """One staging folder per process; CDK copies it into cdk.out under its content hash."""
    return stage_client(Path(tempfile.mkdtemp(prefix="audit-publisher-layer-")))


def publisher_layer(scope: Construct) -> lambda_.ILayerVersion:
    """The client's layer in ``scope``'s stack, created once per stack: a function in another
    stack than the pipeline gets a layer of its own stack (no cross-stack layer export, which
    CloudFormation would refuse to update while in use)."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child(LAYER_ID)
    if isinstance(existing, lambda_.LayerVersion):
        return existing
    return lambda_.LayerVersion(
        stack,
        LAYER_ID,
        code=lambda_.Code.from_asset(str(_staged())),
        compatible_runtimes=list(CLIENT_RUNTIMES),
        compatible_architectures=[ARCHITECTURE, lambda_.Architecture.X86_64],
        description="audit-pipeline's AuditPublisher client (and fastjsonschema, idna)",
    )


class _Grants(Protocol):
    def grant_publish(self, grantee: iam.IGrantable) -> iam.Grant: ...
    def grant_lookup(self, grantee: iam.IGrantable) -> iam.Grant: ...


def wire_publisher(
    pipeline: _Grants, function: lambda_.Function, environment: dict[str, str]
) -> None:
    """``AuditPipeline.add_publisher``: grants, environment and the client's layer."""
    pipeline.grant_publish(function)
    pipeline.grant_lookup(function)  # nothing to grant with subject_in_clear
    for name, value in environment.items():
        function.add_environment(name, value)
    function.add_layers(publisher_layer(function))
