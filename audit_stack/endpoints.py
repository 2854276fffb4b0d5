"""Where the local emulator listens by default (shared by `audit --local` and the emulator)."""

from __future__ import annotations

from typing import Final

__all__ = ["LOCAL_ENDPOINT_URL", "LOCAL_PORT", "LOCAL_REGION"]

LOCAL_PORT: Final = 4599
"""The port of ``python -m audit_stack.local up`` unless told otherwise."""
LOCAL_ENDPOINT_URL: Final = f"http://127.0.0.1:{LOCAL_PORT}"
LOCAL_REGION: Final = "us-east-1"
"""The emulator's region: the one its stacks are deployed in."""
