"""A pipeline's event catalogue (``event_types``): each rule with its message, all at once and
before any child exists; the filter policy, the functions' EVENT_CATALOGUE and the deleteAccount
function follow it."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from audit_stack import AuditPipeline, EventType
from audit_stack.construct import PropsError
from audit_stack.lambda_code import contract
from tests.cdk_app import new_app

pytestmark = pytest.mark.synth  # in-process CDK apps: `make test`, not `make unit`

INVOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_id": {"type": "string", "maxLength": 64},
        "amount_cents": {"type": "integer", "minimum": 0},
    },
    "required": ["invoice_id"],
    "additionalProperties": False,
}


def _problems(event_types: Any) -> list[str]:
    stack = cdk.Stack(new_app(), "Bad")
    with pytest.raises(PropsError) as raised:
        AuditPipeline(stack, "Audit", event_types=event_types)
    assert [c.node.id for c in stack.node.children] == []
    assert {prop for prop, _ in raised.value.problems} == {"event_types"}
    return [rule for _, rule in raised.value.problems]


@pytest.mark.parametrize(
    ("event_types", "message"),
    [
        pytest.param(
            "InvoiceVoided",
            "must be a list of event type names, not one string (got 'InvoiceVoided')",
            id="one string",
        ),
        pytest.param([], "must name at least one event type (e.g. AccountDeleted)", id="empty"),
        pytest.param(
            ["InvoiceVoided", 7],
            "entry 1 must be a name (str) or an EventType, not int",
            id="neither name nor EventType",
        ),
        pytest.param(
            ["invoice voided"],
            "'invoice voided' must match ^[A-Z][A-Za-z0-9]{0,63}$ (e.g. InvoiceVoided)",
            id="bad name",
        ),
        pytest.param(
            [EventType("invoice-voided")],
            "'invoice-voided' must match ^[A-Z][A-Za-z0-9]{0,63}$ (e.g. InvoiceVoided)",
            id="bad EventType name",
        ),
        pytest.param(
            ["InvoiceVoided", EventType("InvoiceVoided", details_schema=INVOICE_SCHEMA)],
            "'InvoiceVoided' is listed more than once",
            id="duplicate",
        ),
        pytest.param(
            [EventType("AccountDeleted", details_schema={"type": "object"})],
            "'AccountDeleted' takes no details_schema: its details are the pipeline's own "
            "(deleteAccount's)",
            id="AccountDeleted with a schema",
        ),
        pytest.param(
            [EventType("InvoiceVoided", details_schema=["type", "object"])],  # type: ignore[arg-type]
            "'InvoiceVoided': details_schema must be a JSON Schema object (a dict)",
            id="schema not a dict",
        ),
        pytest.param(
            [EventType("InvoiceVoided", details_schema={"type": "string"})],
            """'InvoiceVoided': details_schema must have "type": "object" (details are a JSON """
            "object)",
            id="schema not of an object",
        ),
        pytest.param(
            [
                EventType(
                    "InvoiceVoided", details_schema={"type": "object", "minimum": float("nan")}
                )
            ],
            "'InvoiceVoided': details_schema must be JSON (str keys; no NaN or Infinity)",
            id="schema not JSON",
        ),
        pytest.param(
            [
                EventType(
                    "InvoiceVoided",
                    details_schema={"type": "object", "properties": {"a": {"type": "money"}}},
                )
            ],
            "'InvoiceVoided': details_schema is not a valid JSON Schema (Unknown type)",
            id="unknown type in schema",
        ),
        pytest.param(
            [
                EventType(
                    "InvoiceVoided",
                    details_schema={"type": "object", "patternProperties": {"(": {}}},
                )
            ],
            "'InvoiceVoided': details_schema is not a valid JSON Schema (missing ), "
            "unterminated subpattern at position 0)",
            id="pattern not a regular expression",
        ),
        pytest.param(
            [
                EventType(
                    "InvoiceVoided",
                    details_schema={"type": "object", "$ref": "https://example.com/s.json"},
                )
            ],
            "'InvoiceVoided': details_schema may only use local $ref (starting with #)",
            id="remote $ref",
        ),
    ],
)
def test_each_catalogue_rule_is_reported_with_its_message_and_nothing_is_created(
    event_types: Any, message: str
) -> None:
    assert _problems(event_types) == [message]


def test_a_catalogue_too_large_for_lambdas_environment_is_refused_at_synthesis() -> None:
    schema = {"type": "object", "description": "x" * 3100}

    [problem] = _problems([EventType("InvoiceVoided", details_schema=schema)])

    assert problem.startswith("the catalogue is 3152 bytes as JSON; Lambda allows 4 KB")
    assert f"must be at most {contract.MAX_CATALOGUE_BYTES} bytes" in problem


def test_every_bad_entry_of_a_catalogue_is_reported_at_once_in_rule_order() -> None:
    problems = _problems(
        [
            "invoice voided",
            "InvoiceVoided",
            "InvoiceVoided",
            EventType("AccountDeleted", details_schema={"type": "object"}),
            EventType("RefundIssued", details_schema={"type": "string"}),
        ]
    )

    assert [problem.split(" ", 1)[0] for problem in problems] == [
        "'invoice",
        "'InvoiceVoided'",
        "'AccountDeleted'",
        "'RefundIssued':",
    ]


def _template(*event_types: str | EventType) -> Template:
    stack = cdk.Stack(new_app(), "Catalogue")
    AuditPipeline(stack, "Audit", event_types=list(event_types))
    return Template.from_stack(stack)


def _environment(template: Template, description_start: str) -> dict[str, Any]:
    functions = template.find_resources("AWS::Lambda::Function")
    [environment] = [
        resource["Properties"]["Environment"]["Variables"]
        for resource in functions.values()
        if resource["Properties"].get("Description", "").startswith(description_start)
    ]
    return dict(environment)


def test_the_subscription_filter_lists_the_catalogue_and_its_functions_receive_it() -> None:
    template = _template("AccountDeleted", EventType("InvoiceVoided", INVOICE_SCHEMA))

    template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "FilterPolicy": {
                contract.EVENT_TYPE_ATTRIBUTE: [
                    "AccountDeleted",
                    "InvoiceVoided",
                    contract.REDACTION_EVENT_TYPE,
                ]
            }
        },
    )
    expected = {"AccountDeleted": None, "InvoiceVoided": INVOICE_SCHEMA}
    for function in ("Records audit events", "Publishes an AccountDeleted"):
        catalogue = _environment(template, function)[contract.ENV_EVENT_CATALOGUE]
        assert json.loads(catalogue) == expected
        assert " " not in catalogue  # compact: Lambda's environment is 4 KB in all


def test_a_pipeline_without_account_deleted_has_no_delete_account_function_nor_its_alarm() -> None:
    template = _template(EventType("InvoiceVoided", INVOICE_SCHEMA))

    descriptions = [
        resource["Properties"].get("Description", "")
        for resource in template.find_resources("AWS::Lambda::Function").values()
    ]
    assert not any(text.startswith("Publishes an AccountDeleted") for text in descriptions)
    assert len(descriptions) == 2  # the recorder and the sealer
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    assert not any("PublisherErrors" in logical_id for logical_id in alarms)
    template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "FilterPolicy": {
                contract.EVENT_TYPE_ATTRIBUTE: ["InvoiceVoided", contract.REDACTION_EVENT_TYPE]
            }
        },
    )


def test_the_default_catalogue_is_account_deleted_with_its_delete_account_function() -> None:
    stack = cdk.Stack(new_app(), "Default")
    pipeline = AuditPipeline(stack, "Audit")

    assert pipeline.event_types == ("AccountDeleted",)
    assert pipeline.publisher_function is not None
    assert pipeline.catalogue_environment() == {
        contract.ENV_EVENT_CATALOGUE: '{"AccountDeleted":null}'
    }
