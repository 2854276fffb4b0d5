"""The billing service's VoidInvoice function: voids an invoice and records it in the billing
audit log, with the client that `add_publisher` ships in a layer and configures."""

from typing import Any

from audit_stack import AuditPublisher

publisher = AuditPublisher.from_environment()


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    invoice_id = event["invoice_id"]
    published = publisher.publish_event(
        "InvoiceVoided",
        subject=event["customer_id"],
        details={"invoice_id": invoice_id, "reason": event["reason"]},
        actor=event["voided_by"],
        idempotency_key=f"void-{invoice_id}",
    )
    return {"invoice_id": invoice_id, "event_id": published.event_id}
