"""The one way tests build CDK apps: with the repository's cdk.json context, i.e. the feature
flags that `cdk init` writes, so that tests synthesize what `cdk synth` and users synthesize."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aws_cdk as cdk

ROOT = Path(__file__).resolve().parent.parent


@cache
def cdk_json_context() -> dict[str, Any]:
    """The ``context`` of the repository's cdk.json."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def new_app(**props: Any) -> cdk.App:
    """``cdk.App`` with cdk.json's context (aws_cdk is imported only when an app is built)."""
    import aws_cdk as cdk

    context = {**cdk_json_context(), **props.pop("context", {})}
    return cdk.App(context=context, **props)


def context_environment() -> dict[str, str]:
    """Environment variables that give a CDK app in a subprocess cdk.json's context, as the CDK
    CLI does (``cdk.App()`` reads CDK_CONTEXT_JSON)."""
    return {"CDK_CONTEXT_JSON": json.dumps(cdk_json_context())}


def synth_with_cdk_nag(app: cdk.App) -> cdk.cx_api.CloudAssembly:
    """``app.synth()`` checked by cdk-nag's AwsSolutions rules, raising on any unacknowledged
    finding: cdk-nag 3 is a validation plugin that raises; cdk-nag 2 (beside the lowest supported
    aws-cdk-lib, `make test-lowest`) is an aspect whose findings are error annotations."""
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    if hasattr(cdk, "Validations"):
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
        return app.synth()
    aspect: Any = AwsSolutionsChecks()  # cdk-nag 2's checks are an IAspect
    cdk.Aspects.of(app).add(aspect)
    assembly = app.synth()
    errors = [
        f"{message.id}: {message.entry.data}"
        for stack in assembly.stacks
        for message in stack.messages
        if message.level == cdk.cx_api.SynthesisMessageLevel.ERROR
    ]
    if errors:
        raise RuntimeError("\n".join(errors))
    return assembly
