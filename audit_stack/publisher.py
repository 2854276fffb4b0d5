"""``AuditPublisher``: publish audit events straight to the pipeline's topic from an application.

It saves the publisher function's hop and builds each event with the very code the publisher
function runs (``audit_events.publication`` of the Lambda asset), so validation and envelope are
the same. Needs only boto3; the caller's principal needs ``pipeline.grant_publish(...)`` (or, from
another account, ``pipeline.allow_publishers(...)``).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from audit_stack.lambda_code import audit_events_module

if TYPE_CHECKING:
    from audit_events import event as _event_schema
    from audit_events import publication as _publication
else:
    # The Lambda asset's modules, loaded from the installed package (see lambda_code.py).
    _event_schema = audit_events_module("event")
    _publication = audit_events_module("publication")

InvalidPayloadError = _event_schema.InvalidPayloadError
"""Raised for a payload the publisher function would reject; names the field and the rule."""

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

        publisher = AuditPublisher(topic_arn, pseudonym_secret_arn=secret_arn)
        publisher.account_deleted("john.doe@mail.com")
        publisher.publish_many({"email": email} for email in deleted)

    :param topic_arn: the pipeline's topic (``pipeline.topic.topic_arn``).
    :param pseudonym_secret_arn: the pipeline's pseudonym secret
        (``pipeline.pseudonym_secret.secret_arn``; the caller needs ``pipeline.grant_lookup``):
        events name the account by its keyed pseudonym, as the publisher function's do.
    :param subject_in_clear: instead, for a pipeline built with ``subject_in_clear=True``:
        events carry the address. One of the two is required, so no address is ever published
        by mistake.
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
        self._secret_arn = pseudonym_secret_arn
        self._secrets = secrets_client
        self._secret: tuple[float, bytes] | None = None
        if max_attempts < 1:
            raise ValueError("max_attempts: must be at least 1")
        self.topic_arn = topic_arn
        self._sns = sns_client
        self._max_attempts = max_attempts
        self._sleep = sleep

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
        publication = self._build(payload)
        response = self._client().publish(
            TopicArn=self.topic_arn,
            Message=publication.message,
            MessageAttributes=publication.message_attributes,
        )
        return _published(publication, response["MessageId"])

    def publish_many(self, payloads: Iterable[Mapping[str, object]]) -> list[PublishedEvent]:
        """Publish many events with SNS PublishBatch, 10 per request, in order.

        Every payload is validated before anything is published. An entry that SNS fails for a
        reason not of the sender's making (throttling, an internal error, a failed request) is
        retried with backoff; the same event (same id and time) is sent again, so a retry that
        turns out to be a duplicate is recorded once. Raises PublishBatchError listing each
        event still not published, with those that were; nothing is dropped silently.
        """
        publications = [self._build(payload) for payload in payloads]
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

    def _build(self, payload: Mapping[str, object]) -> _publication.Publication:
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
