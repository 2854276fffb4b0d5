"""Events of a team's own type on the emulator: `audit publish`, `trail`, `events --type` and
`dlq show` for InvoiceVoided; a pipeline without AccountDeleted has no deleteAccount."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit_stack.cli import EXIT_OK, EXIT_USAGE
from audit_stack.local import LocalAuditPipeline
from tests.cli.conftest import Audit

BILLING = ("--stack", "CatalogueStack", "--pipeline", "Billing")
AUDIT = ("--stack", "CatalogueStack", "--pipeline", "Audit")


@pytest.fixture(scope="module")
def pipeline(catalogue_assembly: Path) -> Iterator[LocalAuditPipeline]:
    """CatalogueStack on the emulator, pipeline Billing selected (for its queues)."""
    with LocalAuditPipeline(catalogue_assembly, pipeline="Billing") as running:
        yield running


def test_a_billing_event_is_published_and_read_back_by_subject_and_by_type(
    pipeline: LocalAuditPipeline, audit: Audit
) -> None:
    published = audit(
        *BILLING, "--json", "publish", "InvoiceVoided", "--subject", "cus_4QFJ2a",
        "--details", '{"invoice_id": "INV-1042", "amount_cents": 1999}', "--actor", "billing-ui",
    )  # fmt: skip
    assert published.exit_code == EXIT_OK, published.stderr
    event_id = published.json()["event_id"]
    pipeline.run_until_idle()

    trail = audit(*BILLING, "--json", "trail", "cus_4QFJ2a")
    by_type = audit(*BILLING, "--json", "events", "--type", "InvoiceVoided")

    assert trail.exit_code == EXIT_OK, trail.stderr
    [event] = trail.json()["events"]
    assert (event["event_id"], event["event_type"]) == (event_id, "InvoiceVoided")
    assert (event["actor"], event["source"]) == ("billing-ui", "audit-cli")
    assert event["details"] == {"invoice_id": "INV-1042", "amount_cents": 1999}
    assert "cus_4QFJ2a" not in json.dumps(event)  # recorded by pseudonym
    assert [found["event_id"] for found in by_type.json()["events"]] == [event_id]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(
            ("RefundIssued", "--subject", "cus_1"),
            "the event was not published: event_type: must be one of this pipeline's event "
            "types (InvoicePaid, InvoiceVoided)",
            id="type outside the catalogue",
        ),
        pytest.param(
            ("InvoiceVoided", "--subject", "cus_1", "--details", '{"invoice_id": "jane@x.com"}'),
            'the event was not published: details.invoice_id: must match "^INV-[0-9]+$"',
            id="details breaking the schema",
        ),
        pytest.param(
            ("InvoiceVoided", "--subject", "cus_1", "--details", "[1]"),
            "--details: must be a JSON object",
            id="details not an object",
        ),
    ],
)
def test_an_event_the_pipeline_would_not_record_is_refused_with_a_usage_error(
    pipeline: LocalAuditPipeline, audit: Audit, arguments: tuple[str, ...], message: str
) -> None:
    run = audit(*BILLING, "publish", *arguments)

    assert run.exit_code == EXIT_USAGE
    assert message in run.stderr
    assert "jane" not in run.stderr
    pipeline.run_until_idle()
    assert audit(*BILLING, "--json", "trail", "cus_1").json()["events"] == []


def test_a_pipeline_without_account_deleted_has_no_delete_account(audit: Audit) -> None:
    run = audit(*BILLING, "delete-account", "jane@example.com")

    assert run.exit_code == EXIT_USAGE
    assert "has no deleteAccount function (AccountDeleted is not in its event_types)" in run.stderr


def test_one_address_has_one_trail_across_event_types(
    pipeline: LocalAuditPipeline, audit: Audit
) -> None:
    deleted = audit(*AUDIT, "--json", "delete-account", "Jane.Roe@mail.com")
    voided = audit(
        *AUDIT, "--json", "publish", "InvoiceVoided", "--subject", "jane.roe@MAIL.com",
        "--details", '{"invoice_id": "INV-7"}',
    )  # fmt: skip
    assert (deleted.exit_code, voided.exit_code) == (EXIT_OK, EXIT_OK), voided.stderr
    pipeline.run_until_idle()

    trail = audit(*AUDIT, "--json", "trail", "JANE.ROE@mail.com")

    assert sorted(event["event_type"] for event in trail.json()["events"]) == [
        "AccountDeleted",
        "InvoiceVoided",
    ]


def test_an_event_off_its_schema_reaching_the_recorder_is_dead_lettered_and_explained(
    pipeline: LocalAuditPipeline, audit: Audit
) -> None:
    # Straight to the topic, past the client's checks: the recorder checks again.
    message = {
        "schema_version": 3,
        "event_id": str(uuid.uuid4()),
        "event_type": "InvoiceVoided",
        "occurred_at": "2025-03-14T09:26:53.412907Z",
        "subject": "cus_9",
        "subject_type": "identifier",
        "source": "billing",
        "details": {"invoice_id": "INV-9", "card_number": "4242"},
        "idempotent": False,
        "actor": None,
    }
    pipeline.client("sns").publish(
        TopicArn=pipeline.topic_arn,
        Message=json.dumps(message),
        MessageAttributes={"event_type": {"DataType": "String", "StringValue": "InvoiceVoided"}},
    )
    pipeline.run_until_idle(timeout=60)

    shown = audit(*BILLING, "--json", "dlq", "show")

    assert shown.exit_code == EXIT_OK, shown.stderr
    [letter] = shown.json()["messages"]
    assert letter["poison"] is True
    assert letter["problem"] == "details: must have no properties other than the schema's"
    assert letter["event"] == f"InvoiceVoided {message['event_id']}"
