"""``audit redact`` on the emulator with IAM enforced: as the break-glass role a stack grants
with ``grant_redact``, then ``audit verify``, ``audit trail`` and an inclusion proof of the
redacted record; a stub no sealed entry names is tampering. (As the administrator:
test_redaction_denied.py, a second emulator.)"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from audit_stack import discovery
from audit_stack.cli.main import main
from audit_stack.lambda_code import audit_events_module, contract
from audit_stack.local import LocalAuditPipeline
from tests.cli.conftest import Run, run_audit
from tests.conftest import _synthesize_app, cached_assembly

if TYPE_CHECKING:
    from audit_events import integrity
else:
    integrity = audit_events_module("integrity")

_APP = """
import sys
import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from audit_stack import AuditPipeline

app = cdk.App(outdir=sys.argv[1])
stack = cdk.Stack(app, "RedactionStack")
pipeline = AuditPipeline(
    stack, "Audit", event_types=["AccountDeleted", "InvoiceVoided"],
    removal_policy=cdk.RemovalPolicy.DESTROY,
)
break_glass = iam.Role(stack, "BreakGlass", assumed_by=iam.AccountRootPrincipal())
pipeline.grant_redact(break_glass)
# To seal on demand in the test (`audit seal`); grant_redact does not include it.
pipeline.sealer_function.grant_invoke(break_glass)
# The CLI lists the stacks of an emulator endpoint (never on AWS), and the emulator asks IAM
# about CloudFormation's read API on "*" rather than on the stack's ARN (grant_redact grants it
# there): both only to read the emulator's one stack.
break_glass.add_to_policy(
    iam.PolicyStatement(
        actions=[
            "cloudformation:DescribeStacks",
            "cloudformation:GetTemplate",
            "cloudformation:ListStackResources",
        ],
        resources=["*"],
    )
)
app.synth()
"""
ALICE = "alice@example.com"
BOB = "bob@example.com"
PHONE = "+44 20 7946 0000"
REASON = "GDPR Art. 17 request 4711"
STACK = "RedactionStack"


@pytest.fixture(scope="module")
def assembly() -> Path:
    return cached_assembly("redaction", lambda out: _synthesize_app(_APP, out), _APP)


def _break_glass_role(assembly: Path) -> str:
    template = json.loads((assembly / "RedactionStack.template.json").read_text())
    (logical_id,) = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role" and logical_id.startswith("BreakGlass")
    ]
    return str(logical_id)


@pytest.fixture(scope="module")
def pipeline(assembly: Path) -> Iterator[LocalAuditPipeline]:
    """The stack on the emulator, IAM enforced, the CLI calling as the break-glass role."""
    with LocalAuditPipeline(assembly, principal=_break_glass_role(assembly)) as running:
        assert running.enforce_iam
        yield running


@pytest.fixture
def audit(
    pipeline: LocalAuditPipeline,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    def run(*argv: str, stdin: str | None = None) -> Run:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return run_audit(capsys, "--endpoint-url", pipeline.endpoint_url, "--stack", STACK, *argv)

    return run


def _items(pipeline: LocalAuditPipeline) -> list[dict[str, Any]]:
    table = pipeline.table_name
    items: list[dict[str, Any]] = pipeline.client("dynamodb", as_emulator=True).scan(
        TableName=table
    )["Items"]
    return items


def _records_of(pipeline: LocalAuditPipeline, email: str) -> list[dict[str, Any]]:
    subject = pipeline.subject_of(email)
    return [item for item in _items(pipeline) if item[contract.PARTITION_KEY]["S"] == subject]


def _publish(audit: Any, email: str) -> None:
    published = audit(
        "publish",
        "InvoiceVoided",
        "--subject",
        email,
        "--details",
        json.dumps({"note": f"called back on {PHONE}"}),
        "--actor",
        "support-agent-7",
    )
    assert published.exit_code == 0, published.stderr


@pytest.fixture(scope="module")
def redacted(pipeline: LocalAuditPipeline, assembly: Path) -> dict[str, Any]:
    """Two events about Alice and one about Bob, sealed; then Alice's redacted and the redaction
    sealed. What each step printed, for the tests to read."""
    outputs: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as patch:
        for email in (ALICE, ALICE, BOB):
            _publish(lambda *argv: _run(pipeline, *argv), email)
        pipeline.run_until_idle(timeout=60)
        sealed = _run(pipeline, "seal")
        assert sealed.exit_code == 0, sealed.stderr
        patch.setattr("sys.stdin", io.StringIO(f"{ALICE}\n"))
        outputs["redact"] = _run(pipeline, "redact", "-", "--reason", REASON)
        pipeline.run_until_idle(timeout=60)
        outputs["seal"] = _run(pipeline, "seal")
    return outputs


def _run(pipeline: LocalAuditPipeline, *argv: str) -> Run:
    """`audit ARGS` in-process, for module-scoped fixtures (no capsys there)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--endpoint-url", pipeline.endpoint_url, "--stack", STACK, *argv])
    return Run(code, out.getvalue(), err.getvalue())


def test_redact_as_the_break_glass_role_keeps_key_and_sealed_hash_and_drops_the_personal(
    pipeline: LocalAuditPipeline, redacted: dict[str, Any]
) -> None:
    run = redacted["redact"]
    assert run.exit_code == 0, run.stderr
    assert "Redacted 2 record(s)" in run.stdout
    assert ALICE not in run.stdout + run.stderr
    role_arn = pipeline.principal
    alice = _records_of(pipeline, ALICE)
    assert len(alice) == 2
    for item in alice:
        assert "details" not in item
        assert contract.ACTOR_ATTRIBUTE not in item
        assert item[contract.REDACTED_BY_ATTRIBUTE] == {"S": role_arn}
        assert item[contract.REDACTION_REASON_ATTRIBUTE] == {"S": REASON}
        assert item[contract.EVENT_TYPE_ATTRIBUTE] == {"S": "InvoiceVoided"}
    (bob,) = _records_of(pipeline, BOB)
    assert PHONE in json.dumps(bob)
    table = json.dumps(_items(pipeline))
    assert ALICE not in table
    assert table.count(PHONE) == 1  # Bob's only


def test_each_redaction_is_an_entry_sealed_like_any_record(
    pipeline: LocalAuditPipeline, redacted: dict[str, Any]
) -> None:
    assert redacted["seal"].exit_code == 0, redacted["seal"].stderr
    entries = [
        item
        for item in _items(pipeline)
        if item.get(contract.EVENT_TYPE_ATTRIBUTE, {}).get("S") == contract.REDACTION_EVENT_TYPE
    ]
    assert len(entries) == 2
    hashes = {item[contract.RECORD_HASH_ATTRIBUTE]["S"] for item in _records_of(pipeline, ALICE)}
    assert {entry["details"]["M"]["record_hash"]["S"] for entry in entries} == hashes
    for entry in entries:
        assert entry["details"]["M"]["redacted_by"] == {"S": pipeline.principal}
        assert entry["source"] == {"S": "audit-redact"}
    # Sealed like any record: the table's stream delivered both entries to the sealer.
    assert {(e["subject"]["S"], e["event_key"]["S"]) for e in entries} <= _sealed_keys(pipeline)


def _sealed_keys(pipeline: LocalAuditPipeline) -> set[tuple[str, str]]:
    from audit_stack import verify

    digests = verify.digest_items(
        pipeline.client("dynamodb", as_emulator=True),
        pipeline.resource_name(discovery.DIGEST_TABLE),
        pipeline.client("s3", as_emulator=True),
    )
    return {
        ref.key
        for item in digests
        for ref in integrity.parse_digest(item[contract.DIGEST_BODY_ATTRIBUTE]["S"]).records
    }


def test_verify_reports_the_redacted_records_and_passes(
    audit: Any, pipeline: LocalAuditPipeline, redacted: dict[str, Any]
) -> None:
    report = audit("verify", "--json")
    assert report.exit_code == 0, report.stdout
    document = report.json()
    assert document["ok"] is True
    alice = pipeline.subject_of(ALICE)
    assert {finding["kind"] for finding in document["findings"]} == {"redacted"}
    of_alice = [finding for finding in document["findings"] if finding["subject"] == alice]
    assert len(of_alice) == 2
    for finding in document["findings"]:
        assert REASON in finding["detail"]
        assert pipeline.principal in finding["detail"]
    table = audit("verify")
    assert table.exit_code == 0
    assert f"{len(document['findings'])} record(s) are redacted" in table.stdout
    assert "OK: the chain is intact" in table.stdout


def test_trail_shows_the_redacted_records_as_redacted(
    audit: Any, pipeline: LocalAuditPipeline, redacted: dict[str, Any]
) -> None:
    trail = audit("trail", "-", stdin=f"{ALICE}\n")
    assert trail.exit_code == 0, trail.stderr
    assert trail.stdout.count("(redacted ") == 2
    assert PHONE not in trail.stdout
    listed = audit("trail", "-", "--json", stdin=f"{ALICE}\n")
    events = listed.json()["events"]
    assert [event[contract.REDACTION_REASON_ATTRIBUTE] for event in events] == [REASON, REASON]
    assert {event[contract.REDACTED_BY_ATTRIBUTE] for event in events} == {pipeline.principal}
    assert all("details" not in event for event in events)


def test_an_inclusion_proof_of_a_redacted_record_still_verifies(
    audit: Any, pipeline: LocalAuditPipeline, redacted: dict[str, Any], tmp_path: Path
) -> None:
    event_id = _records_of(pipeline, ALICE)[0]["event_id"]["S"]
    proof = tmp_path / "proof.json"
    made = audit("prove", event_id, "--out", str(proof))
    assert made.exit_code == 0, made.stderr
    assert json.loads(proof.read_text())["record"]["canonical_content"] is None
    key = tmp_path / "key.pem"
    assert audit("verify", "--export-public-key", str(key)).exit_code == 0
    checked = audit("verify-proof", str(proof), "--public-key", str(key))
    assert checked.exit_code == 0, checked.stdout + checked.stderr


def test_the_break_glass_role_may_not_change_a_records_hash_or_other_fields(
    pipeline: LocalAuditPipeline, redacted: dict[str, Any]
) -> None:
    (bob,) = _records_of(pipeline, BOB)
    key = {name: bob[name] for name in (contract.PARTITION_KEY, contract.SORT_KEY)}
    dynamodb = pipeline.client("dynamodb")  # as the break-glass role
    for attribute in (contract.RECORD_HASH_ATTRIBUTE, contract.EVENT_TYPE_ATTRIBUTE):
        with pytest.raises(ClientError) as denied:
            dynamodb.update_item(
                TableName=pipeline.table_name,
                Key=key,
                UpdateExpression="SET #a = :v",
                ExpressionAttributeNames={"#a": attribute},
                ExpressionAttributeValues={":v": {"S": "forged"}},
            )
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    # Its puts (for --pseudonymise) may only be stubs: no record with personal content, and
    # nothing without redacted_at.
    forged = {**bob, contract.SORT_KEY: {"S": "2026-01-01T00:00:00.000000Z#forged"}}
    impersonal = {
        name: value
        for name, value in forged.items()
        if name not in contract.PERSONAL_ATTRIBUTES  # but no redacted_at: not a stub
    }
    for item in (forged, impersonal):
        with pytest.raises(ClientError) as put:
            dynamodb.put_item(TableName=pipeline.table_name, Item=item)
        assert put.value.response["Error"]["Code"] == "AccessDeniedException"
    assert _records_of(pipeline, BOB) == [bob]


def _forge_stub(pipeline: LocalAuditPipeline, emulator: Any, key: dict[str, Any]) -> None:
    emulator.update_item(
        TableName=pipeline.table_name,
        Key=key,
        UpdateExpression="SET #at = :at, #why = :why, #by = :by REMOVE details, actor",
        ExpressionAttributeNames={
            "#at": contract.REDACTED_AT_ATTRIBUTE,
            "#why": contract.REDACTION_REASON_ATTRIBUTE,
            "#by": contract.REDACTED_BY_ATTRIBUTE,
        },
        ExpressionAttributeValues={
            ":at": {"S": "2026-01-01T00:00:00.000000Z"},
            ":why": {"S": REASON},
            ":by": {"S": pipeline.principal},
        },
    )


def test_redact_one_event_by_its_id_leaves_the_subjects_other_records(
    audit: Any, pipeline: LocalAuditPipeline, redacted: dict[str, Any]
) -> None:
    carol = "carol@example.com"
    for _ in range(2):
        _publish(audit, carol)
    pipeline.run_until_idle(timeout=60)
    assert audit("seal").exit_code == 0
    first, second = _records_of(pipeline, carol)
    run = audit("redact", "--event-id", first["event_id"]["S"], "--reason", REASON)
    assert run.exit_code == 0, run.stderr
    assert "Redacted 1 record(s)" in run.stdout
    pipeline.run_until_idle(timeout=60)
    assert audit("seal").exit_code == 0
    after = {item["event_id"]["S"]: item for item in _records_of(pipeline, carol)}
    assert "details" not in after[first["event_id"]["S"]]
    assert after[second["event_id"]["S"]] == second
    assert audit("verify").exit_code == 0


def test_an_unsealed_record_is_not_redacted_and_nothing_is_written(
    audit: Any, pipeline: LocalAuditPipeline, redacted: dict[str, Any]
) -> None:
    dave = "dave@example.com"
    with pipeline.stream_sources_paused():  # recorded; the stream has not reached the sealer
        _publish(audit, dave)
        pipeline.run_until_idle(timeout=60)
        before = _items(pipeline)
        run = audit("redact", "-", "--reason", REASON, stdin=f"{dave}\n")
        assert run.exit_code == 1
        assert "not sealed yet" in run.stderr
        assert dave not in run.stdout + run.stderr
        pipeline.run_until_idle(timeout=60)
        assert _items(pipeline) == before
    pipeline.run_until_idle(timeout=60)  # for the other tests: everything sealed again


def test_a_reason_with_an_address_is_refused_before_any_call(
    audit: Any, redacted: dict[str, Any]
) -> None:
    run = audit("redact", "-", "--reason", f"asked by {ALICE}", stdin=f"{ALICE}\n")
    assert run.exit_code == 2
    assert "no '@'" in run.stderr
    assert ALICE not in run.stderr


def test_a_record_in_clear_is_pseudonymised_and_verify_finds_what_it_replaced(
    audit: Any, pipeline: LocalAuditPipeline, redacted: dict[str, Any]
) -> None:
    """A record written before pseudonymous subjects (schema 1, its key the address), sealed:
    `--pseudonymise` moves it to a stub under the pseudonym. The digest that sealed it still
    names the address (signed; the documented limit)."""
    frank = "frank@example.com"
    now = datetime.now(UTC).strftime(contract.TIMESTAMP_FORMAT)
    clear = integrity.with_record_hash(
        {
            contract.PARTITION_KEY: {"S": frank},
            contract.SORT_KEY: {"S": f"{now}#5d0c1e6a-0000-4000-8000-000000000001"},
            contract.SUBJECT_TYPE_ATTRIBUTE: {"S": contract.SUBJECT_TYPE_EMAIL},
            contract.EVENT_TYPE_ATTRIBUTE: {"S": contract.ACCOUNT_DELETED},
            contract.RECORDED_AT_ATTRIBUTE: {"S": now},
            "schema_version": {"N": "1"},
            "details": {"M": {"email": {"S": frank}}},
        }
    )
    # As the recorder wrote it (with its writer MAC; the key read with the emulator's own
    # credentials), sealed from the table's stream.
    secrets = pipeline.client("secretsmanager", as_emulator=True)
    (writer_key,) = [
        entry["ARN"]
        for entry in secrets.list_secrets()["SecretList"]
        if "WriterKey" in entry["Name"]
    ]
    key = secrets.get_secret_value(SecretId=writer_key)["SecretString"].encode()
    clear[contract.WRITER_MAC_ATTRIBUTE] = {
        "S": integrity.writer_mac(key, clear[contract.RECORD_HASH_ATTRIBUTE]["S"])
    }
    pipeline.client("dynamodb", as_emulator=True).put_item(
        TableName=pipeline.table_name, Item=clear
    )
    pipeline.run_until_idle(timeout=60)
    assert (frank, clear[contract.SORT_KEY]["S"]) in _sealed_keys(pipeline)

    refused = audit("redact", "-", "--include-clear", "--reason", REASON, stdin=f"{frank}\n")
    assert refused.exit_code == 1
    assert "--pseudonymise" in refused.stderr
    run = audit("redact", "-", "--pseudonymise", "--reason", REASON, stdin=f"{frank}\n")
    assert run.exit_code == 0, run.stderr
    pipeline.run_until_idle(timeout=60)
    assert audit("seal").exit_code == 0

    table = _items(pipeline)
    assert frank not in json.dumps(table)
    (stub,) = _records_of(pipeline, frank)  # under the pseudonym now
    assert stub[contract.RECORD_HASH_ATTRIBUTE] == clear[contract.RECORD_HASH_ATTRIBUTE]
    report = audit("verify", "--json")
    assert report.exit_code == 0, report.stdout
    (moved,) = [f for f in report.json()["findings"] if f["subject"] == pipeline.subject_of(frank)]
    assert moved["kind"] == "redacted"
    assert moved["detail"].startswith("pseudonymised")
    # Signed (in a digest body, a locked object): what a redaction cannot change.
    assert (frank, clear[contract.SORT_KEY]["S"]) in _sealed_keys(pipeline)


# -- last in the file: these two change the table outside the recorder (and put it back). The
# table's stream carries every such write to the sealer, which reports it, sealed for good in
# the next digest: tests after them would find those reports. (xdist keeps a module's order.)


def test_a_stub_without_a_sealed_redaction_entry_is_tampering(
    audit: Any, pipeline: LocalAuditPipeline, redacted: dict[str, Any]
) -> None:
    """Someone who lifted the table's policy (here: the emulator's own, unchecked credentials)
    makes Bob's record look redacted, without publishing an entry."""
    (bob,) = _records_of(pipeline, BOB)
    key = {name: bob[name] for name in (contract.PARTITION_KEY, contract.SORT_KEY)}
    emulator = pipeline.client("dynamodb", as_emulator=True)
    try:
        _forge_stub(pipeline, emulator, key)
        report = audit("verify", "--json")
    finally:
        emulator.put_item(TableName=pipeline.table_name, Item=bob)  # for the other tests
    assert report.exit_code == 1
    findings = report.json()["findings"]
    tampered = [f for f in findings if f["kind"] == "modified"]
    assert [f["subject"] for f in tampered] == [key[contract.PARTITION_KEY]["S"]]
    assert "no sealed redaction entry" in tampered[0]["detail"]
    assert {f["kind"] for f in findings if f["kind"] != "modified"} == {"redacted"}
    assert audit("verify").exit_code == 0  # restored


def test_records_in_clear_are_looked_up_only_on_request_and_then_refused(
    audit: Any, pipeline: LocalAuditPipeline, redacted: dict[str, Any]
) -> None:
    """A record written before pseudonymous subjects (schema 1): its key is the address."""
    erin = "erin@example.com"
    clear = integrity.with_record_hash(
        {
            contract.PARTITION_KEY: {"S": erin},
            contract.SORT_KEY: {"S": "2020-01-01T00:00:00.000000Z#0b5e0f6c-0000-4000-8000-0"},
            contract.SUBJECT_TYPE_ATTRIBUTE: {"S": contract.SUBJECT_TYPE_EMAIL},
            contract.EVENT_TYPE_ATTRIBUTE: {"S": contract.ACCOUNT_DELETED},
            "schema_version": {"N": "1"},
            "details": {"M": {"email": {"S": erin}}},
        }
    )
    emulator = pipeline.client("dynamodb", as_emulator=True)
    emulator.put_item(TableName=pipeline.table_name, Item=clear)
    try:
        quiet = audit("redact", "-", "--reason", REASON, stdin=f"{erin}\n")
        asked = audit("redact", "-", "--include-clear", "--reason", REASON, stdin=f"{erin}\n")
        stored = _items(pipeline)
    finally:
        key = {name: clear[name] for name in (contract.PARTITION_KEY, contract.SORT_KEY)}
        emulator.delete_item(TableName=pipeline.table_name, Key=key)
    assert quiet.exit_code == 0
    assert "--include-clear reports them" in quiet.stdout
    assert asked.exit_code == 1
    assert "in clear" in asked.stderr
    assert "nothing was redacted" in asked.stderr
    assert erin not in quiet.stdout + quiet.stderr + asked.stdout + asked.stderr
    assert clear in stored  # untouched
