"""`audit verify` on the emulator cannot be steered by what the stored items claim: a back-dated
insert is checked under `--since`, a future one is a finding, a malformed digest and an edited
digest attribute are findings, and none of it ends in a traceback.

The emulator enforces no IAM: the raw DynamoDB calls below are what an administrator who lifted
the tables' policies could do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from audit_stack import discovery
from audit_stack.lambda_code import audit_events_module
from audit_stack.local import LocalAuditPipeline
from tests.e2e.helpers import subject_of

from .conftest import Audit

if TYPE_CHECKING:
    from audit_events import integrity
else:
    integrity = audit_events_module("integrity")


def _inserted(pipeline: LocalAuditPipeline, email: str, recorded_at: str) -> dict[str, Any]:
    """A record written outside the recorder, claiming ``recorded_at``, with a valid own hash."""
    item: dict[str, Any] = integrity.with_record_hash(
        {
            "subject": {"S": subject_of(pipeline, email)},
            "event_key": {"S": f"{recorded_at}#inserted"},
            "recorded_at": {"S": recorded_at},
            "source": {"S": "forged"},
        }
    )
    pipeline.client("dynamodb").put_item(TableName=pipeline.outputs["TableName"], Item=item)
    return item


def test_verify_reports_what_stored_items_claim_instead_of_trusting_it(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    assert audit("delete-account", "honest@example.com").exit_code == 0
    pipeline.run_until_idle(timeout=60)
    assert audit("seal").exit_code == 0
    assert audit("verify").exit_code == 0

    back_dated = _inserted(pipeline, "backdated@example.com", "2020-01-01T00:00:00.000000Z")
    future = _inserted(pipeline, "future@example.com", "2099-01-01T00:00:00.000000Z")
    dynamodb = pipeline.client("dynamodb")
    digest_table = pipeline.resource_name(discovery.DIGEST_TABLE)
    dynamodb.put_item(
        TableName=digest_table,
        Item={"chain": {"S": "audit-log"}, "sequence": {"N": "1.5"}, "body": {"S": "{}"}},
    )
    dynamodb.update_item(
        TableName=digest_table,
        Key={"chain": {"S": "audit-log"}, "sequence": {"N": "1"}},
        UpdateExpression="SET sealed_at = :t",
        ExpressionAttributeValues={":t": {"S": "2000-01-01T00:00:00.000000Z"}},
    )

    checked = audit("verify", "--since", "2021-01-01", "--json")
    table_view = audit("verify", "--since", "2021-01-01")

    assert checked.exit_code == table_view.exit_code == 1
    assert "Traceback" not in checked.stderr + table_view.stderr
    findings = {(f["kind"], f["subject"], f["digest"]) for f in checked.json()["findings"]}
    assert findings == {
        ("chain", "", 1),
        ("malformed item", "", None),
        ("not in any digest", back_dated["subject"]["S"], None),
        ("recorded in the future", future["subject"]["S"], None),
    }
    details = {f["kind"]: f["detail"] for f in checked.json()["findings"]}
    assert details["chain"].startswith("its stored sealed_at '2000-01-01T00:00:00.000000Z'")
    assert details["malformed item"].startswith("a digest item whose sequence {'N': '1.5'}")
    assert "FAILED: 4 finding(s)" in table_view.stdout
    for kind in ("malformed item", "recorded in the future", "not in any digest"):
        assert kind in table_view.stdout
