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
