"""The demo and `up`'s usage on a pipeline whose catalogue has no AccountDeleted: an event of
the pipeline's own type is published with AuditPublisher, recorded, sealed and verified."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit_stack.local import LocalAuditPipeline
from audit_stack.local.__main__ import DEMO_SUBJECT, demo, usage


def test_the_demo_publishes_the_first_type_that_needs_no_details(catalogue_assembly: Path) -> None:
    out = io.StringIO()

    code = demo(str(catalogue_assembly), "CatalogueStack", "Billing", False, out)

    text = out.getvalue()
    assert code == 0, text
    assert f"Publish an event of type InvoicePaid about {DEMO_SUBJECT} (AuditPublisher)" in text
    assert f"Audit trail of {DEMO_SUBJECT}, subject = its HMAC-SHA-256 pseudonym" in text
    assert "InvoicePaid" in text.split("Audit trail of", 1)[1]
    assert "OK: 1 digest(s), 1 record(s) sealed" in text


@pytest.fixture(scope="module")
def billing(catalogue_assembly: Path) -> Iterator[LocalAuditPipeline]:
    with LocalAuditPipeline(catalogue_assembly, pipeline="Billing") as running:
        yield running


def test_usage_offers_audit_publish_and_no_delete_account_without_the_function(
    billing: LocalAuditPipeline,
) -> None:
    text = usage(billing)

    assert "delete-account" not in text and "lambda invoke" not in text
    assert f"publish InvoiceVoided --subject {DEMO_SUBJECT}" in text
    assert f"trail {DEMO_SUBJECT}" in text
    assert "events --type InvoiceVoided" in text
