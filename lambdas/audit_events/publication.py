"""What is published for one request: the validated event, its SNS message and attributes.

The deleteAccount function and applications that publish to the topic directly (the
``AuditPublisher`` client of the ``audit_stack`` package) both build publications here, so they
validate, pseudonymise and envelope events identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .contract import EVENT_TYPE_ATTRIBUTE
from .event import AuditEvent, build_account_deleted_event


@dataclass(frozen=True, slots=True)
class Publication:
    """One audit event as an SNS Publish (or PublishBatch entry) carries it."""

    event: AuditEvent

    @property
    def message(self) -> str:
        return self.event.to_json()

    @property
    def message_attributes(self) -> dict[str, dict[str, str]]:
        # The subscription's filter policy matches on the event type, as an attribute.
        return {EVENT_TYPE_ATTRIBUTE: {"DataType": "String", "StringValue": self.event.event_type}}


def account_deleted_publication(
    payload: object, *, now: datetime, secret: bytes | None, event_id: str | None = None
) -> Publication:
    """The publication for a deleteAccount payload ``{"email": ..., "idempotency_key": ...}``.

    ``secret``: the pseudonym secret's bytes (the subject is then the address's keyed
    pseudonym); ``None`` only with ``subject_in_clear``. ``event_id``: the id of an event
    without an idempotency key (a new UUID4 by default). InvalidPayloadError (the field and the
    rule, never the value) when the payload breaks a rule.
    """
    return Publication(
        build_account_deleted_event(payload, secret=secret, now=now, random_id=event_id)
    )
