"""The pytest fixture's IAM switch: a suite overrides ``local_audit_enforce_iam`` (and
``local_audit_principal``) like the stack and pipeline fixtures."""

from __future__ import annotations

import pytest

from audit_stack.local import LocalAuditPipeline

pytestmark = pytest.mark.e2e

OPERATOR = "arn:aws:iam::123456789012:role/Operator"


@pytest.fixture(scope="session")
def local_audit_enforce_iam() -> bool:
    return False


@pytest.fixture(scope="session")
def local_audit_principal() -> str:
    return OPERATOR


def test_overridden_fixtures_turn_enforcement_off_and_name_the_principal(
    local_audit_pipeline: LocalAuditPipeline,
) -> None:
    """With enforcement off a message straight into the queue (which its policy reserves for
    the topic) is accepted."""
    assert local_audit_pipeline.enforce_iam is False
    assert local_audit_pipeline.principal == OPERATOR
    with local_audit_pipeline.event_sources_paused():
        sqs = local_audit_pipeline.client("sqs")
        sqs.send_message(QueueUrl=local_audit_pipeline.queue_url, MessageBody="forged")
        attributes = sqs.get_queue_attributes(
            QueueUrl=local_audit_pipeline.queue_url,
            AttributeNames=["ApproximateNumberOfMessages"],
        )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"
