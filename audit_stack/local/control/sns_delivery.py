"""SNS → SQS deliveries that can fail as on AWS: a delivery the queue's policy or key denies, or
to a queue that no longer exists, goes to the subscription's dead-letter queue (its
RedrivePolicy) and ``Publish`` still succeeds; without a DLQ the message is dropped.

https://docs.aws.amazon.com/sns/latest/dg/sns-dead-letter-queues.html
https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html (the queue
policy must let sns.amazonaws.com send, for this topic)

moto delivers inside ``Subscription.publish`` straight into its SQS backend; this hook decides
each SQS delivery's outcome around it, after the subscription's filter policy.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import moto.sns.models
from moto.sqs.exceptions import QueueDoesNotExist

DeliveryCheck = Callable[[str, str], str | None]
"""(topic ARN, queue ARN) -> why SNS cannot deliver there, or None"""

_SNS_MODELS: Any = moto.sns.models


class SnsDelivery:
    """Installs the delivery outcome into moto's SNS subscriptions while the emulator runs."""

    def __init__(self, check: DeliveryCheck, on_event: Callable[[str], None]) -> None:
        self._check = check
        self._on_event = on_event
        self._original: Any = None
        self.failed: list[tuple[str, str, str]] = []
        """(subscription ARN, queue ARN, why) of every delivery that failed"""

    def install(self) -> None:
        if self._original is not None:
            return
        original = _SNS_MODELS.Subscription.publish
        self._original = original
        delivery = self

        def publish(subscription: Any, message: str, message_id: str, **kwargs: Any) -> None:
            if subscription.protocol != "sqs":
                return original(subscription, message, message_id, **kwargs)  # type: ignore[no-any-return]
            matcher = subscription._filter_policy_matcher
            if matcher is not None and not matcher.matches(
                kwargs.get("message_attributes"), message
            ):
                return None
            delivery.deliver(subscription, message, message_id, kwargs)
            return None

        _SNS_MODELS.Subscription.publish = publish

    def uninstall(self) -> None:
        if self._original is not None:
            _SNS_MODELS.Subscription.publish = self._original
            self._original = None

    def deliver(
        self, subscription: Any, message: str, message_id: str, kwargs: dict[str, Any]
    ) -> None:
        """Deliver to the endpoint, or else to the subscription's DLQ, or drop the message."""
        topic_arn = subscription.topic.arn
        why = self._attempt(subscription, subscription.endpoint, message, message_id, kwargs)
        if why is None:
            return
        self.failed.append((subscription.arn, subscription.endpoint, why))
        redrive = subscription.attributes.get("RedrivePolicy")
        target = json.loads(redrive).get("deadLetterTargetArn") if redrive else None
        if target is None:
            self._on_event(f"SNS delivery from {topic_arn} failed and was dropped: {why}")
            return
        dead_letter = copy.copy(subscription)
        dead_letter.endpoint = target
        lost = self._attempt(dead_letter, target, message, message_id, kwargs)
        if lost is None:
            self._on_event(f"SNS delivery from {topic_arn} failed ({why}): moved to {target}")
        else:
            self._on_event(f"SNS delivery from {topic_arn} failed ({why}), DLQ too ({lost})")

    def _attempt(
        self,
        subscription: Any,
        queue_arn: str,
        message: str,
        message_id: str,
        kwargs: dict[str, Any],
    ) -> str | None:
        why = self._check(subscription.topic.arn, queue_arn)
        if why is not None:
            return why
        # The filter already held: moto's publish must not apply it again to the DLQ copy.
        plain = copy.copy(subscription)
        plain._filter_policy_matcher = None
        try:
            self._original(plain, message, message_id, **kwargs)
        except QueueDoesNotExist:
            return f"queue {queue_arn} does not exist"
        return None
