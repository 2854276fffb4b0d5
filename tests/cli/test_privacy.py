"""No plaintext e-mail anywhere in the pipeline by default; every one with subject_in_clear=True.

100 deleteAccount calls go through the emulator: recorded events (some with idempotency keys and
retried, some with IDN domains), events whose recording fails until they reach the DLQ, events
left waiting in the queue, and payloads the publisher rejects. Then every table item, index
item, queue and DLQ body, captured function log line, the output (and the files) of every
`audit` command, and every request the CLI sends to AWS (URL and body, recorded as botocore
sends them) is searched for the addresses. The one request that carries an address by design is
`audit delete-account`'s invocation of the publisher function, the one place that sees it.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from audit_stack.cli import main, target
from audit_stack.local import LocalAuditPipeline
from audit_stack.local.pipeline import FunctionInvocationError
from tests.cli.conftest import OPERATOR_ENFORCE_IAM

pytestmark = pytest.mark.e2e

# Local parts are unique ASCII tokens: found whether a text has the address raw, lower-cased,
# with its domain in punycode or with JSON's \\u escapes.
RECORDED = [f"Priv.Recorded{n:02d}@Example.com" for n in range(50)]
IDN = [f"priv.idn{n:02d}@bücher.example" for n in range(10)]
IDEMPOTENT = [f"priv.retried{n:02d}@example.org" for n in range(10)]
DEAD_LETTERED = [f"priv.deadletter{n:02d}@example.net" for n in range(10)]
WAITING = [f"priv.waiting{n:02d}@example.net" for n in range(10)]
REJECTED = [f"priv.rejected{n:02d}@example.com" for n in range(10)]
PUBLISHED_BY_CLI = "Priv.Published.By.Cli@Example.com"
PUBLISHED = RECORDED + IDN + IDEMPOTENT + DEAD_LETTERED + WAITING + [PUBLISHED_BY_CLI]


def _token(address: str) -> str:
    return address.split("@")[0].lower()


def _rejected_payload(number: int, address: str) -> dict[str, Any]:
    shapes: list[dict[str, Any]] = [
        {"mail": address},
        {"email": address, "note": "extra field"},
        {"email": f" {address}"},
        {"email": address.replace("@", "@@")},
        {"email": address, "idempotency_key": "\n"},
    ]
    return shapes[number % len(shapes)]


@dataclass
class Observed:
    """Everything the pipeline and the CLI left behind, as text."""

    texts: dict[str, list[str]] = field(default_factory=dict)

    def add(self, where: str, text: str) -> None:
        # Both as stored and with JSON escapes undone, so that "\\u00fc" cannot hide an address.
        self.texts.setdefault(where, []).append(text.lower())
        try:
            decoded = json.dumps(json.loads(text), ensure_ascii=False)
        except ValueError:
            return
        self.texts[where].append(decoded.lower())

    def where(self, address: str) -> set[str]:
        token = _token(address)
        return {place for place, texts in self.texts.items() if any(token in t for t in texts)}


def _run_everything(pipeline: LocalAuditPipeline, *, in_clear: bool) -> Observed:
    observed = Observed()
    outputs: dict[tuple[str, ...], str] = {}
    files = Path(tempfile.mkdtemp(prefix="privacy-sweep-"))

    def audit(*argv: str) -> int:
        """`audit ARGS` in-process; its exit code, what it printed is observed."""
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["--endpoint-url", pipeline.endpoint_url, *argv])
        observed.add(f"audit {argv[0]}", out.getvalue() + err.getvalue())
        outputs[argv] = out.getvalue()
        return code

    def record_request(request: Any, **_: Any) -> None:
        body = request.body or b""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        # The publisher's invocation carries the payload {"email": ...}: its job, by design.
        place = "publisher invocation" if "/invocations" in request.url else "CLI request"
        for shown in (request.url, text, unquote_plus(request.url), unquote_plus(text)):
            observed.add(place, shown)

    def recording_session(**options: Any) -> Any:
        session = original_session(**options)
        session.events.register("before-send", record_request)
        return session

    original_session = target._session
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(target, "_session", recording_session)
        _exercise(pipeline, audit, outputs, files, observed, in_clear=in_clear)
    for line in pipeline.logs():
        observed.add("function logs", line)
    for written in files.iterdir():
        observed.add("audit files", written.read_text(encoding="utf-8"))
    _observe_stores(pipeline, observed)  # after every command: what they left behind too
    return observed


def _exercise(
    pipeline: LocalAuditPipeline,
    audit: Any,
    outputs: dict[tuple[str, ...], str],
    files: Path,
    observed: Observed,
    *,
    in_clear: bool,
) -> None:
    """Every `audit` command against the pipeline, with the addresses the sweep looks for."""
    for address in RECORDED[:45] + IDN:
        pipeline.invoke("publisher", {"email": address})
    for address in RECORDED[45:]:
        assert audit("delete-account", address) == 0
    for number, address in enumerate(IDEMPOTENT):
        for _ in range(2):  # the caller retries
            pipeline.invoke("publisher", {"email": address, "idempotency_key": f"req-{number}"})
    assert audit("publish", "AccountDeleted", "--subject", PUBLISHED_BY_CLI) == 0
    pipeline.run_until_idle()
    with (
        pipeline.inject_fault("dynamodb:BatchExecuteStatement", error_code="AccessDeniedException"),
        pipeline.inject_fault("dynamodb:TransactWriteItems", error_code="AccessDeniedException"),
    ):
        for address in DEAD_LETTERED:
            pipeline.invoke("publisher", {"email": address})
        pipeline.run_until_idle(timeout=90)
    for number, address in enumerate(REJECTED):
        with pytest.raises(FunctionInvocationError):
            pipeline.invoke("publisher", _rejected_payload(number, address))
        assert audit("delete-account", address.replace("@", "@@")) == 2
    with pipeline.event_sources_paused():
        for address in WAITING:
            pipeline.invoke("publisher", {"email": address})
        _observe_stores(pipeline, observed)
        for address in (RECORDED[0], IDN[0], IDEMPOTENT[0], DEAD_LETTERED[0], PUBLISHED_BY_CLI):
            assert audit("trail", address) == 0
            assert audit("trail", address, "--json") == 0
        assert audit("events", "--type", "AccountDeleted", "--limit", "500") == 0
        assert audit("events", "--type", "AccountDeleted", "--json") == 0
        assert audit("dlq", "show", "--json") == 0
        assert audit("dlq", "show") == 0
        assert audit("status", "--json") == 3
        assert audit("status") == 3
    pipeline.run_until_idle(timeout=90)  # the waiting events recorded, the stream delivered
    assert audit("seal") == 0
    assert audit("verify") == 0
    assert audit("verify", "--json") == 0
    assert audit("checkpoint", "--out", str(files / "checkpoint.json")) == 0
    assert audit("verify", "--export-public-key", str(files / "key.pem")) == 0
    assert audit("trail", RECORDED[1], "--json") == 0
    event_id = json.loads(outputs[("trail", RECORDED[1], "--json")])["events"][0]["event_id"]
    assert audit("prove", event_id, "--out", str(files / "proof.json")) == 0
    key = str(files / "key.pem")
    assert audit("verify-proof", str(files / "proof.json"), "--public-key", key) == 0
    # An erasure request (the address from a file, as an operator should give it): erased on a
    # pseudonymous pipeline (the redaction entry holds no address); a clear one refuses, its
    # key is the address (exit 1, the operator error).
    subject_file = files / "subject.txt"
    subject_file.write_text(RECORDED[2], encoding="utf-8")
    reason = ("--reason", "Art. 17 request 4711")
    assert audit("redact", "--subject-file", str(subject_file), *reason) == (1 if in_clear else 0)
    subject_file.unlink()  # the operator's own file: not something the pipeline left behind
    pipeline.run_until_idle()  # the redaction entry recorded, then sealed
    assert audit("seal") == 0
    assert audit("verify") == 0
    assert audit("dlq", "redrive", "--timeout", "60") == 0
    pipeline.run_until_idle(timeout=90)


def _observe_stores(pipeline: LocalAuditPipeline, observed: Observed) -> None:
    dynamodb = pipeline.client("dynamodb")
    table = pipeline.outputs["TableName"]
    indexes = dynamodb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])
    for index_name in [None, *(index["IndexName"] for index in indexes)]:
        request: dict[str, Any] = {"TableName": table}
        if index_name is not None:
            request["IndexName"] = index_name
        for page in dynamodb.get_paginator("scan").paginate(**request):
            for item in page["Items"]:
                observed.add("index item" if index_name else "table item", json.dumps(item))
    sqs = pipeline.client("sqs")
    for where, output in (("queue body", "QueueUrl"), ("DLQ body", "DeadLetterQueueUrl")):
        handles = []
        while batch := sqs.receive_message(
            QueueUrl=pipeline.outputs[output], MaxNumberOfMessages=10, VisibilityTimeout=60
        ).get("Messages", []):
            for message in batch:
                observed.add(where, message["Body"])
                handles.append(message["ReceiptHandle"])
        for handle in handles:  # back to visible, for the CLI to read too
            sqs.change_message_visibility(
                QueueUrl=pipeline.outputs[output], ReceiptHandle=handle, VisibilityTimeout=0
            )
    for invocation in pipeline.invocations("recorder"):
        for record in invocation.event["Records"]:
            observed.add("queue body", record["body"])


@pytest.fixture(scope="module", params=["default", "subject_in_clear"])
def observed(
    request: pytest.FixtureRequest,
    cloud_assembly: Path,
    subject_in_clear_assembly: Path,
) -> Iterator[tuple[str, Observed]]:
    assembly = cloud_assembly if request.param == "default" else subject_in_clear_assembly
    with LocalAuditPipeline(assembly, enforce_iam=OPERATOR_ENFORCE_IAM) as pipeline:
        yield request.param, _run_everything(pipeline, in_clear=request.param != "default")


def test_every_place_was_observed(observed: tuple[str, Observed]) -> None:
    mode, seen = observed

    assert {
        "table item",
        "index item",
        "queue body",
        "DLQ body",
        "function logs",
        "audit delete-account",
        "audit publish",
        "audit trail",
        "audit events",
        "audit dlq",
        "audit status",
        "audit seal",
        "audit verify",
        "audit checkpoint",
        "audit prove",
        "audit verify-proof",
        "audit redact",
        "audit files",
        "CLI request",
        "publisher invocation",
    } <= set(seen.texts)
    assert sum(map(len, seen.texts.values())) > 500
    # The requests were really seen, bodies included: trail's queries and its secret reads.
    assert any("keyconditionexpression" in text for text in seen.texts["CLI request"])
    secret_read = any('"secretid"' in text for text in seen.texts["CLI request"])
    assert secret_read == (mode == "default")  # a clear pipeline has no secret


def test_no_address_appears_anywhere_by_default_and_each_appears_in_clear(
    observed: tuple[str, Observed],
) -> None:
    mode, seen = observed
    found = {address: seen.where(address) for address in PUBLISHED + REJECTED}
    by_design = {"publisher invocation"}  # the publisher function is where an address goes in

    if mode == "default":
        assert {
            address: places - by_design for address, places in found.items() if places - by_design
        } == {}
        # The sweep would see an address in a request: delete-account's invocation has them.
        assert all(found[address] == {"publisher invocation"} for address in RECORDED[45:])
    else:
        recorded = RECORDED + IDN + IDEMPOTENT + [PUBLISHED_BY_CLI]
        assert all("table item" in found[address] for address in recorded)
        assert all("index item" in found[address] for address in recorded)
        assert all("DLQ body" in found[address] for address in DEAD_LETTERED)
        assert all("queue body" in found[address] for address in WAITING)
        # In clear, trail's query keys are the address itself: the requests show it.
        assert "CLI request" in found[RECORDED[0]]
        # Refused by the publisher: never published, not even in clear.
        assert all(not found[address] - by_design for address in REJECTED)
