"""Fixtures of the end-to-end tests: the emulator's pytest plugin and a short-timeout variant."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit_stack.local.pytest_plugin import local_audit_assembly, local_audit_pipeline
from tests.conftest import synthesize_with_props

__all__ = ["local_audit_assembly", "local_audit_pipeline"]


@pytest.fixture(scope="session")
def short_timeout_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cloud assembly of AuditStack with a 1-second recorder timeout (synthesized once).

    The smallest recorder timeout the construct accepts: it derives the queue's visibility
    timeout from it, exactly as in production.
    """
    return synthesize_with_props(
        tmp_path_factory.mktemp("short-timeout.out"),
        '{"recorder_timeout": cdk.Duration.seconds(1)}',
    )
