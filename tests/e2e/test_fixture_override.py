"""A suite overrides the emulator plugin's fixtures to pick its assembly and pipeline (in a module
of its own: one emulator runs per process at a time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit_stack.local import LocalAuditPipeline
from tests.e2e.helpers import records_of

EMAIL = "fixture.user@mail.com"


class TestFixtureOverride:
    """A suite overrides the plugin's fixtures to pick its assembly and pipeline."""

    @pytest.fixture
    def local_audit_assembly(self, two_pipelines_assembly: Path) -> Path:
        return two_pipelines_assembly

    @pytest.fixture
    def local_audit_pipeline_id(self) -> str:
        return "Audit"

    def test_the_fixture_deploys_the_chosen_pipeline(
        self, local_audit_pipeline: LocalAuditPipeline
    ) -> None:
        assert (local_audit_pipeline.stack_name, local_audit_pipeline.pipeline) == (
            "MyStack",
            "Audit",
        )
        local_audit_pipeline.invoke("publisher", {"email": EMAIL})
        local_audit_pipeline.run_until_idle()
        assert len(records_of(local_audit_pipeline, EMAIL)) == 1
