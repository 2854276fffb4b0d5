"""The recorder's writes of a batch: its plain events in one BatchExecuteStatement request, its
idempotent events' transactions concurrently; each message still succeeds or fails alone."""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from botocore.validate import ParamValidationDecorator

from audit_events.event import AuditEvent, build_account_deleted_event

from .builders import account_deleted, record_for, sns_notification, sqs_event, sqs_record
from .conftest import TableStream

# Long enough that overlapping writes show, short enough for a unit test.
SIMULATED_LATENCY_SECONDS = 0.05
NOW = datetime(2025, 3, 14, 9, 26, 53, 412907, tzinfo=UTC)
_MOTO = threading.Lock()


class _InFlight:
    """Counts calls in progress at once, across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.most = 0
        self.calls = 0

    def __enter__(self) -> None:
        with self._lock:
            self.calls += 1
            self.current += 1
            self.most = max(self.most, self.current)

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self.current -= 1


def _idempotent(number: int) -> AuditEvent:
    """An AccountDeleted with an idempotency key: written with its marker, in a transaction."""
    return build_account_deleted_event(
        {"email": f"user{number}@mail.com", "idempotency_key": f"request-{number}"},
        secret=None,
        now=NOW + timedelta(milliseconds=number),
    )


def _slow(
    client: Any, operation: str, monkeypatch: pytest.MonkeyPatch, failing: set[str]
) -> _InFlight:
    """Every call of ``operation`` takes SIMULATED_LATENCY_SECONDS more; a call naming an
    event id in ``failing`` fails."""
    original = getattr(client, operation)
    in_flight = _InFlight()

    def slow(**request: Any) -> Any:
        with in_flight:
            time.sleep(SIMULATED_LATENCY_SECONDS)
            if any(f'"{event_id}"' in repr(request).replace("'", '"') for event_id in failing):
                raise ClientError(
                    {"Error": {"Code": "InternalServerError", "Message": "injected"}}, operation
                )
            # moto's in-process backend is not thread-safe (a transaction iterating over a table
            # that another one changes raises RuntimeError): the waits overlap, the writes not.
            with _MOTO:
                return original(**request)

    monkeypatch.setattr(client, operation, slow)
    return in_flight


@pytest.fixture
def slow_writes(
    recorder: ModuleType, audit_table: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[dict[str, _InFlight], Callable[[str], None]]]:
    """The recorder's three writes, each slowed down and counted; a named event's write fails."""
    # The client the recorder gets with the test context's 29.5 s left.
    client = recorder.client("dynamodb", 29.5)
    failing: set[str] = set()
    counted = {
        operation: _slow(client, operation, monkeypatch, failing)
        for operation in ("batch_execute_statement", "transact_write_items", "put_item")
    }
    yield counted, failing.add


def _recorded_ids(audit_table: str) -> set[str]:
    items = boto3.client("dynamodb").scan(TableName=audit_table)["Items"]
    return {item["event_id"]["S"] for item in items if item["event_key"]["S"] != "idempotency"}


def _inserted_ids(audit_table: str) -> list[str]:
    """The event id of every INSERT on the table's stream (what the sealer is given), in order."""
    stream = TableStream(audit_table)
    return [
        record["dynamodb"]["NewImage"]["event_id"]["S"]
        for record in stream.records()
        if record["eventName"] == "INSERT"
        and record["dynamodb"]["NewImage"]["event_key"]["S"] != "idempotency"
    ]


def test_a_batchs_plain_events_are_written_in_one_request(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    slow_writes: tuple[dict[str, _InFlight], Callable[[str], None]],
) -> None:
    counted, _ = slow_writes
    events = [account_deleted(f"user{number}@mail.com") for number in range(10)]

    response = recorder.handler(sqs_event(*map(record_for, events)), lambda_context)

    assert response == {"batchItemFailures": []}
    assert _recorded_ids(audit_table) == {event.event_id for event in events}
    assert counted["batch_execute_statement"].calls == 1
    assert counted["put_item"].calls == counted["transact_write_items"].calls == 0


def test_idempotent_events_transactions_overlap_up_to_the_pool_size(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    slow_writes: tuple[dict[str, _InFlight], Callable[[str], None]],
) -> None:
    counted, _ = slow_writes
    events = [_idempotent(number) for number in range(10)]

    response = recorder.handler(sqs_event(*map(record_for, events)), lambda_context)

    assert response == {"batchItemFailures": []}
    assert _recorded_ids(audit_table) == {event.event_id for event in events}
    transactions = counted["transact_write_items"]
    assert transactions.calls == 10
    # Overlap is shown by the writes in flight at once, not by the wall clock (which a loaded
    # machine stretches): one after another, there would never be more than one.
    assert 1 < transactions.most <= recorder.MAX_CONCURRENT_WRITES
    assert counted["batch_execute_statement"].calls == 0


@pytest.mark.parametrize("kind", ["plain", "idempotent"])
def test_one_failed_write_in_a_batch_fails_only_its_message(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    slow_writes: tuple[dict[str, _InFlight], Callable[[str], None]],
    kind: str,
) -> None:
    """A plain event's failed request, or an idempotent event's failed transaction."""
    _, fail = slow_writes
    events = [
        account_deleted(f"user{number}@mail.com") if kind == "plain" else _idempotent(number)
        for number in range(10)
    ]
    failed = events[3]
    fail(failed.event_id)
    if kind == "plain":
        # The request fails as a whole: every plain event of it is retried, none recorded.
        expected_failures = [f"m-{number}" for number in range(10)]
        others: set[str] = set()
    else:
        expected_failures = ["m-3"]
        others = {event.event_id for event in events if event is not failed}

    response = recorder.handler(
        sqs_event(
            *(record_for(event, message_id=f"m-{number}") for number, event in enumerate(events))
        ),
        lambda_context,
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": m} for m in expected_failures]}
    assert _recorded_ids(audit_table) == others
    # The stream, which feeds the sealer, holds each written item once as an INSERT: nothing
    # of a failed message.
    assert sorted(_inserted_ids(audit_table)) == sorted(others)


def test_duplicates_in_one_batch_record_the_event_once(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    slow_writes: tuple[dict[str, _InFlight], Callable[[str], None]],
) -> None:
    repeated = account_deleted("twice@mail.com")
    body = sns_notification(repeated.to_json())
    twice_idempotent = _idempotent(99)
    idempotent_body = sns_notification(twice_idempotent.to_json())
    others = [account_deleted(f"user{number}@mail.com") for number in range(4)]

    response = recorder.handler(
        sqs_event(
            sqs_record(body, message_id="first"),
            sqs_record(idempotent_body, message_id="first-idempotent"),
            *map(record_for, others),
            sqs_record(body, message_id="second"),
            sqs_record(idempotent_body, message_id="second-idempotent"),
        ),
        lambda_context,
    )

    assert response == {"batchItemFailures": []}
    written = [repeated.event_id, twice_idempotent.event_id, *(e.event_id for e in others)]
    assert _recorded_ids(audit_table) == set(written)
    # Written once: one INSERT on the stream for the sealer, not two.
    assert sorted(_inserted_ids(audit_table)) == sorted(written)


def test_every_batch_of_an_execution_environment_writes_on_one_pool_of_threads(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    slow_writes: tuple[dict[str, _InFlight], Callable[[str], None]],
) -> None:
    def writers() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("audit-write")}

    for batch in range(3):
        events = [_idempotent(batch * 10 + number) for number in range(10)]
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
