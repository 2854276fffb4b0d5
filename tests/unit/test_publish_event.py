"""AuditPublisher.publish_event and publish_many on moto: events of any type, refused before
publishing when the pipeline's catalogue would not record them, PublishBatch's partial failures
reported; from_environment reads what the construct sets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from audit_stack import EventType
from audit_stack.lambda_code import audit_events_module, contract
from audit_stack.publisher import (
    AuditPublisher,
    InvalidPayloadError,
    NewEvent,
    PublishBatchError,
)

REGION = "eu-west-1"
SECRET = "p" * 64
INVOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"invoice_id": {"type": "string"}, "amount_cents": {"type": "integer"}},
    "required": ["invoice_id"],
    "additionalProperties": False,
}
CATALOGUE = ["AccountDeleted", EventType("InvoiceVoided", details_schema=INVOICE_SCHEMA)]


class Pipeline:
    """The topic, its catalogue-filtered queue and the pseudonym secret, in moto."""

    def __init__(self) -> None:
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.topic_arn = self.sns.create_topic(Name="audit")["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName="audit")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={
                "FilterPolicy": json.dumps({"event_type": ["AccountDeleted", "InvoiceVoided"]})
            },
        )
        self.secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="pseudonyms", SecretString=SECRET
        )["ARN"]

    def publisher(self, **options: Any) -> AuditPublisher:
        defaults: dict[str, Any] = {
            "pseudonym_secret_arn": self.secret_arn,
            "event_types": CATALOGUE,
            "source": "billing",
            "sns_client": self.sns,
            "sleep": lambda seconds: None,
        }
        return AuditPublisher(self.topic_arn, **{**defaults, **options})

    def queued_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while messages := self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10
        ).get("Messages"):
            for message in messages:
                events.append(json.loads(json.loads(message["Body"])["Message"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return events


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Pipeline]:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield Pipeline()


def _pseudonym(subject: str) -> str:
    return str(audit_events_module("event").subject_key(subject, SECRET.encode()))


def test_an_event_of_the_catalogue_is_published_and_reaches_the_queue_by_pseudonym(
    pipeline: Pipeline,
) -> None:
    published = pipeline.publisher().publish_event(
        "InvoiceVoided",
        subject="cus_4QFJ2a",
        details={"invoice_id": "INV-1042", "amount_cents": 1999},
        actor="billing-ui",
    )

    [event] = pipeline.queued_events()
    assert event["event_id"] == published.event_id
    assert published.event_type == "InvoiceVoided"
    assert event["subject"] == _pseudonym("cus_4QFJ2a")
    assert (event["actor"], event["source"], event["schema_version"]) == (
        "billing-ui",
        "billing",
        3,
    )
    assert event["details"] == {"invoice_id": "INV-1042", "amount_cents": 1999}


def test_a_type_outside_the_catalogue_is_refused_and_nothing_is_published(
    pipeline: Pipeline,
) -> None:
    with pytest.raises(InvalidPayloadError, match=r"^event_type: must be one of this pipeline's"):
        pipeline.publisher().publish_event("RefundIssued", subject="cus_4QFJ2a")

    assert pipeline.queued_events() == []


def test_details_breaking_the_schema_are_refused_naming_field_and_rule(pipeline: Pipeline) -> None:
    with pytest.raises(InvalidPayloadError) as raised:
        pipeline.publisher().publish_event(
            "InvoiceVoided", subject="cus_1", details={"invoice_id": "INV-1", "card": "4242"}
        )

    assert str(raised.value) == "details: must have no properties other than the schema's"
    assert pipeline.queued_events() == []


def test_account_deleted_stays_a_shorthand_and_is_refused_when_outside_the_catalogue(
    pipeline: Pipeline,
) -> None:
    pipeline.publisher().account_deleted("John.Doe@mail.com")
    [event] = pipeline.queued_events()
    assert (event["event_type"], event["subject"]) == (
        "AccountDeleted",
        _pseudonym("john.doe@mail.com"),
    )

    billing_only = pipeline.publisher(event_types=[EventType("InvoiceVoided", INVOICE_SCHEMA)])
    with pytest.raises(InvalidPayloadError, match=r"^event_type: must be one of"):
        billing_only.account_deleted("John.Doe@mail.com")


def test_publish_many_sends_batches_of_ten_of_any_form_in_order(pipeline: Pipeline) -> None:
    events: list[NewEvent | dict[str, Any]] = [
        NewEvent("InvoiceVoided", subject=f"cus_{index}", details={"invoice_id": f"INV-{index}"})
        for index in range(11)
    ]
    events.append(
        {"event_type": "InvoiceVoided", "subject": "cus_x", "details": {"invoice_id": "I"}}
    )
    events.append({"email": "jane@example.com"})

    published = pipeline.publisher().publish_many(events)

    assert [event.event_type for event in published] == ["InvoiceVoided"] * 12 + ["AccountDeleted"]
    queued = pipeline.queued_events()
    assert sorted(event["event_id"] for event in queued) == sorted(e.event_id for e in published)


def test_publish_many_validates_every_event_before_publishing_any(pipeline: Pipeline) -> None:
    with pytest.raises(InvalidPayloadError, match=r"^details: must have the properties"):
        pipeline.publisher().publish_many(
            [
                NewEvent("InvoiceVoided", subject="cus_1", details={"invoice_id": "INV-1"}),
                NewEvent("InvoiceVoided", subject="cus_2", details={}),
            ]
        )
    with pytest.raises(InvalidPayloadError, match=r"^event: unexpected field"):
        pipeline.publisher().publish_many([{"event_type": "InvoiceVoided", "subjet": "cus_1"}])

    assert pipeline.queued_events() == []


def test_a_batch_entry_that_sns_refuses_is_reported_with_those_published(
    pipeline: Pipeline,
) -> None:
    def oversize_second_entry(params: dict[str, Any], **_: Any) -> None:
        # SNS refuses a message over 256 KiB per entry: moto answers a partial failure.
        params["PublishBatchRequestEntries"][1]["Message"] = "x" * (256 * 1024 + 1)

    pipeline.sns.meta.events.register(
        "before-parameter-build.sns.PublishBatch", oversize_second_entry
    )
    events = [
        NewEvent("InvoiceVoided", subject=f"cus_{index}", details={"invoice_id": f"INV-{index}"})
        for index in range(3)
    ]

    with pytest.raises(PublishBatchError) as raised:
        pipeline.publisher().publish_many(events)

    [failed] = raised.value.failed
    assert (failed.index, failed.sender_fault) == (1, True)
    assert [event.event_type for event in raised.value.published] == ["InvoiceVoided"] * 2
    assert str(raised.value).startswith("1 of 3 audit events were not published: #1 (")
    assert len(pipeline.queued_events()) == 2


def test_from_environment_reads_what_the_construct_sets(pipeline: Pipeline) -> None:
    catalogue = audit_events_module("catalogue")
    environment = {
        contract.ENV_TOPIC_ARN: pipeline.topic_arn,
        contract.ENV_PSEUDONYM_SECRET_ARN: pipeline.secret_arn,
        contract.ENV_EVENT_CATALOGUE: catalogue.catalogue_json(
            catalogue.catalogue_schemas(CATALOGUE)
        ),
        "AWS_LAMBDA_FUNCTION_NAME": "billing-voider",
    }

    publisher = AuditPublisher.from_environment(environment, sns_client=pipeline.sns)
    publisher.publish_event("InvoiceVoided", subject="cus_1", details={"invoice_id": "INV-1"})

    [event] = pipeline.queued_events()
    assert event["source"] == "billing-voider"
    with pytest.raises(InvalidPayloadError, match=r"^event_type: must be one of"):
        publisher.publish_event("RefundIssued", subject="cus_1")
    with pytest.raises(ValueError, match=r"^TOPIC_ARN: not set"):
        AuditPublisher.from_environment({})


def test_an_event_without_a_source_is_refused_when_the_client_has_none(pipeline: Pipeline) -> None:
    publisher = AuditPublisher(
        pipeline.topic_arn, pseudonym_secret_arn=pipeline.secret_arn, sns_client=pipeline.sns
    )

    with pytest.raises(InvalidPayloadError, match=r"^source: give publish_event"):
        publisher.publish_event("InvoiceVoided", subject="cus_1")
    # Without a catalogue the client cannot refuse a type; the source makes it publishable.
    publisher.publish_event("InvoiceVoided", subject="cus_1", source="billing")
    assert len(pipeline.queued_events()) == 1
