"""What is published for one request: the validated event, its SNS message and attributes.

The deleteAccount function and applications that publish to the topic directly (the
``AuditPublisher`` client of the ``audit_stack`` package) both build publications here, so they
validate, pseudonymise and envelope events identically.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from .catalogue import EventCatalogue, EventRuleError, refuse_addresses
from .contract import ACCOUNT_DELETED, EVENT_TYPE_ATTRIBUTE
from .event import (
    AuditEvent,
    InvalidPayloadError,
    build_account_deleted_event,
    build_event,
    personal_details,
)


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


def event_publication(
    event_type: object,
    *,
    subject: object,
    details: object = None,
    actor: object = None,
    source: object,
    idempotency_key: object = None,
    occurred_at: datetime | None = None,
    now: datetime,
    secret: bytes | None,
    catalogue: EventCatalogue | None,
    event_id: str | None = None,
) -> Publication:
    """The publication of an event of any type (``event.build_event``), checked against the
    pipeline's ``catalogue`` when known: a type outside it, or details that break its type's
    schema, raise InvalidPayloadError (the field and the rule, never the value) and nothing is
    published, rather than being dropped silently by the subscription's filter.

    The type's personal fields (``EventType.personal_fields``) are recorded by their keyed
    pseudonym under ``secret``; anything else in the details that looks like an e-mail address
    is refused (with no catalogue, nothing is declared personal)."""
    if catalogue is not None and not catalogue.knows(event_type):
        # Before the other fields: the first thing wrong is the pipeline, not the event.
        catalogue_check(catalogue, event_type, {})
    event = build_event(
        event_type,
        subject=subject,
        details=details,
        actor=actor,
        source=source,
        idempotency_key=idempotency_key,
        occurred_at=occurred_at,
        now=now,
        secret=secret,
        event_id=event_id,
    )
    if catalogue is not None:
        catalogue_check(catalogue, event.event_type, event.details)
        personal = catalogue.personal_fields(event.event_type)
        if personal:
            event = replace(event, details=personal_details(event.details, personal, secret))
    elif event.event_type != ACCOUNT_DELETED:
        try:
            refuse_addresses(event.details)
        except EventRuleError as error:
            raise InvalidPayloadError(str(error)) from None
    return Publication(event)


def catalogue_check(catalogue: EventCatalogue, event_type: object, details: object) -> None:
    """InvalidPayloadError if ``catalogue`` refuses the event type or its details."""
    try:
        catalogue.check(str(event_type), details if isinstance(details, dict) else {})
    except EventRuleError as error:
        raise InvalidPayloadError(str(error)) from None
