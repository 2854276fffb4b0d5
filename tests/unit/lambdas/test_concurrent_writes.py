"""The recorder writes a batch's items concurrently; each write still succeeds or fails alone."""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from botocore.validate import ParamValidationDecorator

from .builders import account_deleted, record_for, sns_notification, sqs_event, sqs_record
from .conftest import TableStream

# Long enough that overlapping writes show, short enough for a unit test.
SIMULATED_LATENCY_SECONDS = 0.05


class _InFlight:
    """Counts PutItem calls in progress at once, across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.most = 0

    def __enter__(self) -> None:
        with self._lock:
            self.current += 1
            self.most = max(self.most, self.current)

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self.current -= 1


@pytest.fixture
def slow_put_item(
    recorder: ModuleType, audit_table: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[_InFlight, Callable[[str], None]]]:
    """Every PutItem takes SIMULATED_LATENCY_SECONDS more; a named event's write fails."""
    # The client the recorder gets with the test context's 29.5 s left.
    client = recorder.client("dynamodb", 29.5)
    put_item = client.put_item
    in_flight = _InFlight()
    failing: set[str] = set()

    def slow(**request: Any) -> Any:
        with in_flight:
            time.sleep(SIMULATED_LATENCY_SECONDS)
            if request["Item"]["event_id"]["S"] in failing:
                raise ClientError(
                    {"Error": {"Code": "InternalServerError", "Message": "injected"}}, "PutItem"
                )
            return put_item(**request)

    monkeypatch.setattr(client, "put_item", slow)
    yield in_flight, failing.add


def _recorded_ids(audit_table: str) -> set[str]:
    items = boto3.client("dynamodb").scan(TableName=audit_table)["Items"]
    return {item["event_id"]["S"] for item in items}


def _inserted_ids(audit_table: str) -> list[str]:
    """The event id of every INSERT on the table's stream (what the sealer is given), in order."""
    stream = TableStream(audit_table)
    return [
        record["dynamodb"]["NewImage"]["event_id"]["S"]
        for record in stream.records()
        if record["eventName"] == "INSERT"
    ]


def test_a_batchs_writes_overlap_up_to_the_pool_size(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    slow_put_item: tuple[_InFlight, Callable[[str], None]],
) -> None:
    in_flight, _ = slow_put_item
    events = [account_deleted(f"user{number}@mail.com") for number in range(10)]

    response = recorder.handler(sqs_event(*map(record_for, events)), lambda_context)

    assert response == {"batchItemFailures": []}
    assert _recorded_ids(audit_table) == {event.event_id for event in events}
    # Overlap is shown by the writes in flight at once, not by the wall clock (which a loaded
    # machine stretches): one after another, there would never be more than one.
    assert in_flight.most > 1
    assert in_flight.most <= recorder.MAX_CONCURRENT_WRITES


def test_one_failed_write_among_concurrent_writes_fails_only_its_message(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    slow_put_item: tuple[_InFlight, Callable[[str], None]],
) -> None:
    in_flight, fail = slow_put_item
    events = [account_deleted(f"user{number}@mail.com") for number in range(10)]
    failed = events[3]
    fail(failed.event_id)

    response = recorder.handler(
        sqs_event(
            *(
                record_for(event, message_id="failed-id" if event is failed else None)
                for event in events
            )
        ),
        lambda_context,
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": "failed-id"}]}
    assert in_flight.most > 1
    others = {event.event_id for event in events if event is not failed}
    assert _recorded_ids(audit_table) == others
    # The stream, which feeds the sealer, holds each written item once as an INSERT: nothing
    # of the failed message.
    inserted = _inserted_ids(audit_table)
    assert sorted(inserted) == sorted(others)


def test_duplicates_in_one_concurrent_batch_record_the_event_once(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    slow_put_item: tuple[_InFlight, Callable[[str], None]],
) -> None:
    repeated = account_deleted("twice@mail.com")
    body = sns_notification(repeated.to_json())
    others = [account_deleted(f"user{number}@mail.com") for number in range(4)]

    response = recorder.handler(
        sqs_event(
            sqs_record(body, message_id="first"),
            *map(record_for, others),
            sqs_record(body, message_id="second"),
        ),
        lambda_context,
    )

    assert response == {"batchItemFailures": []}
    assert _recorded_ids(audit_table) == {repeated.event_id} | {e.event_id for e in others}
    # Written once: one INSERT on the stream for the sealer, not two.
    assert sorted(_inserted_ids(audit_table)) == sorted(
        [repeated.event_id] + [e.event_id for e in others]
    )


def test_every_batch_of_an_execution_environment_writes_on_one_pool_of_threads(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    slow_put_item: tuple[_InFlight, Callable[[str], None]],
) -> None:
    def writers() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("audit-write")}

    for batch in range(3):
        events = [account_deleted(f"user{batch}-{number}@mail.com") for number in range(10)]
        response = recorder.handler(sqs_event(*map(record_for, events)), lambda_context)
        assert response == {"batchItemFailures": []}
        if batch == 0:
            first = writers()

    assert len(_recorded_ids(audit_table)) == 30
    assert 1 < len(first) <= recorder.MAX_CONCURRENT_WRITES
    assert writers() == first  # the later batches started no thread of their own


def test_the_recorders_clients_skip_botocores_own_request_validation(
    recorder: ModuleType,
) -> None:
    # Every request is built by the recorder's code: validating each one's shape in botocore
    # was CPU per call for nothing (the service validates it anyway).
    # botocore keeps the setting only in the client's serializer (not in meta.config).
    for service in ("dynamodb", "sqs"):
        serializer = recorder.client(service, 29.5)._serializer
        assert not isinstance(serializer, ParamValidationDecorator), service


def test_threads_asking_for_a_client_at_once_share_the_one_client_built(
    recorder: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = importlib.import_module("audit_events.clients")
    clients.forget_cached()
    built: list[str] = []
    real_client = clients.boto3.client

    def slow_client(service: str, **kwargs: Any) -> Any:
        built.append(service)
        time.sleep(0.05)  # a client takes a while to build: every thread arrives meanwhile
        return real_client(service, **kwargs)

    monkeypatch.setattr(clients.boto3, "client", slow_client)
    start = threading.Barrier(recorder.MAX_CONCURRENT_WRITES)

    def ask() -> Any:
        start.wait()
        return clients.client("dynamodb", 29.5)

    with ThreadPoolExecutor(recorder.MAX_CONCURRENT_WRITES) as pool:
        got = list(pool.map(lambda _: ask(), range(recorder.MAX_CONCURRENT_WRITES)))

    assert built == ["dynamodb"]
    assert all(client is got[0] for client in got)
