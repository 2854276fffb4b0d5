"""``AuditPublisher``: publish audit events of any type straight to the pipeline's topic.

It builds each event with the very code the pipeline's functions run (``audit_events.publication``
of the Lambda asset), so validation, pseudonym and envelope are the same, and it refuses events
that the pipeline's catalogue (its ``event_types``) would not record, instead of letting the
topic's subscription filter drop them silently. Needs only boto3 (and fastjsonschema for details
schemas); the caller's principal needs ``pipeline.grant_publish(...)`` (or, from another account,
``pipeline.allow_publishers(...)``).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from audit_stack.lambda_code import audit_events_module, contract

if TYPE_CHECKING:
    from audit_events import catalogue as _catalogue
    from audit_events import event as _event_schema
    from audit_events import publication as _publication
else:
    # The Lambda asset's modules, loaded from the installed package (see lambda_code.py).
    _catalogue = audit_events_module("catalogue")
    _event_schema = audit_events_module("event")
    _publication = audit_events_module("publication")

InvalidPayloadError = _event_schema.InvalidPayloadError
"""Raised for an event the pipeline would not record; names the field and the rule, never the
value. Raised before anything is published."""
EventType = _catalogue.EventType
EventCatalogue = _catalogue.EventCatalogue

# SNS PublishBatch takes at most 10 entries per request.
BATCH_SIZE = 10
_RETRY_BASE_SECONDS = 0.1
_RETRY_MAX_SECONDS = 5.0
# How long the pseudonym secret is reused: a rotated secret is picked up within this time.
_SECRET_CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class PublishedEvent:
    """One audit event that SNS accepted."""

    event_id: str
    event_type: str
    occurred_at: str
    sns_message_id: str


@dataclass(frozen=True)
class NewEvent:
    """One event for ``publish_many``: ``publish_event``'s arguments."""

    event_type: str
    subject: str
    details: Mapping[str, Any] | None = None
    actor: str | None = None
    source: str | None = None
    idempotency_key: str | None = None
    occurred_at: datetime | None = None


_NEW_EVENT_FIELDS = frozenset(field.name for field in fields(NewEvent))


@dataclass(frozen=True)
class FailedEntry:
    """One audit event that SNS did not accept, after the retries it was worth."""

    index: int
    """Its position in the payloads given to ``publish_many``."""
    event_id: str
    code: str
    message: str
    sender_fault: bool


class PublishBatchError(Exception):
    """Some events were not published; ``published`` lists those that were."""

    def __init__(self, published: list[PublishedEvent], failed: list[FailedEntry]) -> None:
        self.published = published
        self.failed = failed
        reasons = "; ".join(
            f"#{entry.index} ({entry.event_id}): {entry.code}: {entry.message}"
            for entry in failed[:10]
        )
        more = f"; and {len(failed) - 10} more" if len(failed) > 10 else ""
        super().__init__(
            f"{len(failed)} of {len(published) + len(failed)} audit events were not published: "
            f"{reasons}{more}"
        )


class AuditPublisher:
    """Publishes audit events to an AuditPipeline's topic.

    ::

        publisher = AuditPublisher.from_environment()  # in a function wired by the pipeline
        publisher.publish_event(
            "InvoiceVoided", subject=customer_id, details={"invoice_id": "INV-1"}, actor="ui"
        )
        publisher.account_deleted("john.doe@mail.com")
        publisher.publish_many(NewEvent("InvoiceVoided", subject=c) for c in customers)

    :param topic_arn: the pipeline's topic (``pipeline.topic.topic_arn``).
    :param pseudonym_secret_arn: the pipeline's pseudonym secret
        (``pipeline.pseudonym_secret.secret_arn``; the caller needs ``pipeline.grant_lookup``):
        events name the account by its keyed pseudonym, as the publisher function's do.
    :param subject_in_clear: instead, for a pipeline built with ``subject_in_clear=True``:
        events carry the address. One of the two is required, so no address is ever published
        by mistake; refused in a function whose environment names a pseudonym secret (one that
        ``add_publisher`` wired to a pseudonymous pipeline).
    :param event_types: the pipeline's catalogue (its ``event_types``: names or ``EventType``
        entries, or an ``EventCatalogue``): events outside it, or whose details break their
        type's schema, are refused before publishing. ``None``: not checked here (the topic's
        subscription then drops unknown types; the pipeline alarms on it).
    :param source: the ``source`` of events published without one (e.g. the service's name).
    :param sns_client: a boto3 SNS client; by default one for the topic's region.
    :param secrets_client: a boto3 Secrets Manager client; by default one for that region.
    :param max_attempts: attempts per event when SNS reports a failure that is not the sender's.
    :param sleep: how to wait between attempts (tests pass a recorder).
    """

    def __init__(
        self,
        topic_arn: str,
        *,
        pseudonym_secret_arn: str | None = None,
        subject_in_clear: bool = False,
        event_types: Sequence[str | _catalogue.EventType] | _catalogue.EventCatalogue | None = None,
        source: str | None = None,
        sns_client: Any | None = None,
        secrets_client: Any | None = None,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not topic_arn.startswith("arn:") or topic_arn.count(":") != 5:
            raise ValueError("topic_arn: must be a topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")
        if (pseudonym_secret_arn is None) != subject_in_clear:
            raise ValueError(
                "pseudonym_secret_arn: give the pipeline's pseudonym secret "
                "(pipeline.pseudonym_secret.secret_arn, with pipeline.grant_lookup), or "
                "subject_in_clear=True for a pipeline that records addresses in clear; not both"
            )
        if subject_in_clear and os.environ.get(contract.ENV_PSEUDONYM_SECRET_ARN):
            # A function that add_publisher wired to a pseudonymous pipeline: in clear, the
            # address would sit in the queue and the dead-letter queue for up to 14 days.
            raise ValueError(
                f"subject_in_clear: refused, this function's pipeline keys subjects with a "
                f"pseudonym secret ({contract.ENV_PSEUDONYM_SECRET_ARN} is set): use "
                "AuditPublisher.from_environment() or pseudonym_secret_arn=, so that no address "
                "is published"
            )
        self._secret_arn = pseudonym_secret_arn
        self._secrets = secrets_client
        self._secret: tuple[float, bytes] | None = None
        if max_attempts < 1:
            raise ValueError("max_attempts: must be at least 1")
        self.topic_arn = topic_arn
        self.source = source
        self.catalogue: _catalogue.EventCatalogue | None = (
            event_types
            if isinstance(event_types, _catalogue.EventCatalogue) or event_types is None
            else _catalogue_of(event_types)
        )
        self._sns = sns_client
        self._max_attempts = max_attempts
        self._sleep = sleep

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, **options: Any
    ) -> AuditPublisher:
        """The client for a function the pipeline wired (``add_publisher``): the topic, the
        pseudonym secret (or ``SUBJECT_IN_CLEAR``), the catalogue and the default source from
        its environment. ``options``: the other keyword arguments (clients, retries)."""
        env = os.environ if environ is None else environ
        topic_arn = env.get(contract.ENV_TOPIC_ARN)
        if not topic_arn:
            raise ValueError(
                f"{contract.ENV_TOPIC_ARN}: not set; wire this function to the pipeline "
                "(AuditPipeline.add_publisher) or construct AuditPublisher(topic_arn, ...)"
            )
        catalogue_text = env.get(contract.ENV_EVENT_CATALOGUE)
        return cls(
            topic_arn,
            pseudonym_secret_arn=env.get(contract.ENV_PSEUDONYM_SECRET_ARN) or None,
            subject_in_clear=env.get(contract.ENV_SUBJECT_IN_CLEAR) == contract.SUBJECT_IN_CLEAR_ON,
            event_types=_catalogue.parse_catalogue(catalogue_text) if catalogue_text else None,
            source=env.get(contract.ENV_SOURCE) or env.get("AWS_LAMBDA_FUNCTION_NAME") or None,
            **options,
        )

    def _client(self) -> Any:
        if self._sns is None:
            import boto3

            self._sns = boto3.client("sns", region_name=self.topic_arn.split(":")[3])
        return self._sns

    def account_deleted(self, email: str, *, idempotency_key: str | None = None) -> PublishedEvent:
        """Publish one AccountDeleted event, as the publisher function does for
        ``{"email": email}``. ``idempotency_key`` goes into the payload as the function receives
        it, so it is accepted exactly when the function accepts it."""
        payload: dict[str, object] = {"email": email}
        if idempotency_key is not None:
            payload["idempotency_key"] = idempotency_key
        return self.publish(payload)

    def publish(self, payload: Mapping[str, object]) -> PublishedEvent:
        """Publish the event for one publisher-function payload (SNS Publish)."""
        return self._send(self._build(payload))

    def publish_event(
        self,
        event_type: str,
        *,
        subject: str,
        details: Mapping[str, Any] | None = None,
        actor: str | None = None,
        source: str | None = None,
        idempotency_key: str | None = None,
        occurred_at: datetime | None = None,
    ) -> PublishedEvent:
        """Publish one event of any type in the pipeline's catalogue (SNS Publish).

        :param subject: whom it is about: an e-mail address (normalised as deleteAccount's) or
            any identifier; recorded by its keyed pseudonym unless the pipeline keeps subjects
            in clear.
        :param details: a JSON object of at most 8 KiB, matching the type's details schema.
        :param actor: who did it (a role, a service, a user id; not an e-mail address).
        :param source: the producing service; by default the client's ``source``.
        :param idempotency_key: the same key (for the same type and subject) is one event,
            recorded once however often it is published.
        :param occurred_at: when it happened (timezone-aware); by default now.

        Raises InvalidPayloadError, publishing nothing, for an event the pipeline would not
        record.
        """
        return self._send(
            self._build_event(
                NewEvent(event_type, subject, details, actor, source, idempotency_key, occurred_at)
            )
        )

    def _send(self, publication: _publication.Publication) -> PublishedEvent:
        response = self._client().publish(
            TopicArn=self.topic_arn,
            Message=publication.message,
            MessageAttributes=publication.message_attributes,
        )
        return _published(publication, response["MessageId"])

    def publish_many(
        self, events: Iterable[NewEvent | Mapping[str, object]]
    ) -> list[PublishedEvent]:
        """Publish many events with SNS PublishBatch, 10 per request, in order.

        Each event is a ``NewEvent``, a mapping of ``publish_event``'s arguments (with
        ``event_type``), or a deleteAccount payload (``{"email": ...}``). Every event is
        validated before anything is published. An entry that SNS fails for a
        reason not of the sender's making (throttling, an internal error, a failed request) is
        retried with backoff; the same event (same id and time) is sent again, so a retry that
        turns out to be a duplicate is recorded once. Raises PublishBatchError listing each
        event still not published, with those that were; nothing is dropped silently.
        """
        publications = [self._build_any(event) for event in events]
        published: dict[int, PublishedEvent] = {}
        failed: dict[int, FailedEntry] = {}
        for start in range(0, len(publications), BATCH_SIZE):
            indexes = range(start, min(start + BATCH_SIZE, len(publications)))
            self._publish_batch(publications, list(indexes), published, failed)
        if failed:
            raise PublishBatchError(
                [published[index] for index in sorted(published)],
                [failed[index] for index in sorted(failed)],
            )
        return [published[index] for index in range(len(publications))]

    def _publish_batch(
        self,
        publications: Sequence[_publication.Publication],
        pending: list[int],
        published: dict[int, PublishedEvent],
        failed: dict[int, FailedEntry],
    ) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        for attempt in range(1, self._max_attempts + 1):
            last = attempt == self._max_attempts
            try:
                response = self._client().publish_batch(
                    TopicArn=self.topic_arn,
                    PublishBatchRequestEntries=[
                        {
                            "Id": str(index),
                            "Message": publications[index].message,
                            "MessageAttributes": publications[index].message_attributes,
                        }
                        for index in pending
                    ],
                )
            except (ClientError, BotoCoreError) as error:
                # botocore has already retried what it deems retryable; a whole request that
                # still fails gets this method's retries too, then counts for each entry.
                code = (
                    str(error.response.get("Error", {}).get("Code", "ClientError"))
                    if isinstance(error, ClientError)
                    else type(error).__name__
                )
                sender_fault = isinstance(error, ClientError) and _is_sender_fault(error)
                if last or sender_fault:
                    for index in pending:
                        failed[index] = _failure(
                            publications, index, code, str(error), sender_fault
                        )
                    return
                self._sleep(_backoff(attempt))
                continue
            for entry in response.get("Successful", []):
                index = int(entry["Id"])
                published[index] = _published(publications[index], entry["MessageId"])
            retry = []
            for entry in response.get("Failed", []):
                index = int(entry["Id"])
                sender_fault = bool(entry.get("SenderFault"))
                if last or sender_fault:
                    failed[index] = _failure(
                        publications,
                        index,
                        str(entry.get("Code", "")),
                        str(entry.get("Message", "")),
                        sender_fault,
                    )
                else:
                    retry.append(index)
            unanswered = [i for i in pending if i not in published and i not in failed]
            pending = sorted(set(retry) | set(unanswered))
            if not pending:
                return
            if last:
                for index in pending:
                    failed[index] = _failure(
                        publications, index, "NoAnswer", "SNS did not answer for it", False
                    )
                return
            self._sleep(_backoff(attempt))

    def _build_any(self, event: NewEvent | Mapping[str, object]) -> _publication.Publication:
        if isinstance(event, NewEvent):
            return self._build_event(event)
        if isinstance(event, Mapping) and "event_type" in event:
            unexpected = sorted(str(name) for name in event if name not in _NEW_EVENT_FIELDS)
            if unexpected:
                raise InvalidPayloadError(f"event: unexpected field(s) {', '.join(unexpected)}")
            return self._build_event(NewEvent(**event))  # type: ignore[arg-type]
        return self._build(event)

    def _build_event(self, event: NewEvent) -> _publication.Publication:
        source = event.source if event.source is not None else self.source
        if source is None:
            raise InvalidPayloadError(
                "source: give publish_event(source=...) or AuditPublisher(source=...): the "
                "producing service"
            )
        return _publication.event_publication(
            event.event_type,
            subject=event.subject,
            details=dict(event.details) if event.details is not None else None,
            actor=event.actor,
            source=source,
            idempotency_key=event.idempotency_key,
            occurred_at=event.occurred_at,
            now=datetime.now(UTC),
            secret=self._pseudonym_secret(),
            catalogue=self.catalogue,
            event_id=str(uuid.uuid4()),
        )

    def _build(self, payload: Mapping[str, object]) -> _publication.Publication:
        if self.catalogue is not None:
            _publication.catalogue_check(self.catalogue, contract.ACCOUNT_DELETED, {})
        # The publisher function's own builder: same validation, pseudonym and envelope.
        return _publication.account_deleted_publication(
            dict(payload),
            now=datetime.now(UTC),
            secret=self._pseudonym_secret(),
            event_id=str(uuid.uuid4()),
        )

    def _pseudonym_secret(self) -> bytes | None:
        """The secret's current version, read at most every 5 minutes (as the function does)."""
        if self._secret_arn is None:
            return None
        now = time.monotonic()
        if self._secret is None or now - self._secret[0] >= _SECRET_CACHE_SECONDS:
            if self._secrets is None:
                import boto3

                region = self._secret_arn.split(":")[3]
                self._secrets = boto3.client("secretsmanager", region_name=region)
            value = self._secrets.get_secret_value(SecretId=self._secret_arn)
            self._secret = (now, str(value["SecretString"]).encode("utf-8"))
        return self._secret[1]


def _catalogue_of(
    event_types: Sequence[str | _catalogue.EventType],
) -> _catalogue.EventCatalogue:
    if isinstance(event_types, str):
        raise ValueError("event_types: must be a list of event type names, not one string")
    schemas = _catalogue.catalogue_schemas(event_types)
    for name, schema in schemas.items():
        problems = [] if schema is None else _catalogue.schema_problems(schema)
        if problems:
            raise ValueError(f"event_types: {name}: {problems[0]}")
    return _catalogue.EventCatalogue(schemas)


def _published(publication: _publication.Publication, message_id: str) -> PublishedEvent:
    event = publication.event
    return PublishedEvent(event.event_id, event.event_type, event.occurred_at, message_id)


def _failure(
    publications: Sequence[_publication.Publication],
    index: int,
    code: str,
    message: str,
    sender_fault: bool,
) -> FailedEntry:
    return FailedEntry(index, publications[index].event.event_id, code, message, sender_fault)


def _is_sender_fault(error: Any) -> bool:
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
    code = str(error.response.get("Error", {}).get("Code", ""))
    return 400 <= status < 500 and "Throttl" not in code


def _backoff(attempt: int) -> float:
    """Full-jitter exponential backoff."""
    return random.uniform(0, min(_RETRY_MAX_SECONDS, _RETRY_BASE_SECONDS * 2**attempt))
