"""Where the local emulator listens by default (shared by `audit --local` and the emulator)."""

from __future__ import annotations

from typing import Final

__all__ = ["LOCAL_ENDPOINT_URL", "LOCAL_PORT", "LOCAL_REGION", "SELECTED_PIPELINE_TAG"]

LOCAL_PORT: Final = 4599
"""The port of ``python -m audit_stack.local up`` unless told otherwise."""
LOCAL_ENDPOINT_URL: Final = f"http://127.0.0.1:{LOCAL_PORT}"
LOCAL_REGION: Final = "us-east-1"
"""The emulator's region: the one its stacks are deployed in."""
SELECTED_PIPELINE_TAG: Final = "audit-pipeline:selected-pipeline"
"""The tag of the emulator's stack (DescribeStacks) naming the pipeline that ``up --pipeline``
selected: ``audit --local`` operates on it when no ``--pipeline`` is given."""
