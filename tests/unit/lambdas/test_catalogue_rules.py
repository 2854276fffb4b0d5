"""Each rule of the Lambda side of the event catalogue (``audit_events/catalogue.py``), one test
each: what makes a details schema unusable (``schema_problems``, which the construct's
``event_types`` validation also reports, tests/infra/test_event_catalogue.py), what makes an
``EVENT_CATALOGUE`` value unreadable (``parse_catalogue``), and how a refused event's message
names the field and the rule without a value or a name that may be personal."""

from __future__ import annotations

from typing import Any

import pytest

from audit_events.catalogue import (
    CatalogueError,
    EventCatalogue,
    EventRuleError,
    parse_catalogue,
    schema_problems,
)

NOT_AN_OBJECT = 'details_schema must have "type": "object" (details are a JSON object)'
ONLY_LOCAL_REFS = "details_schema may only use local $ref (starting with #)"


def _refusal(schema: dict[str, Any], details: dict[str, Any]) -> str:
    with pytest.raises(EventRuleError) as raised:
        EventCatalogue({"InvoiceVoided": schema}).check("InvoiceVoided", details)
    return str(raised.value)


# --- schema_problems: a details schema the catalogue can use ----------------------------------


def test_a_usable_schema_with_local_refs_has_no_problems() -> None:
    schema = {
        "type": "object",
        "properties": {"invoice": {"$ref": "#/definitions/invoice"}},
        "definitions": {"invoice": {"type": "string"}},
    }

    assert schema_problems(schema) == []


def test_a_schema_that_is_not_a_mapping_is_refused() -> None:
    assert schema_problems(["type", "object"]) == [
        "details_schema must be a JSON Schema object (a dict)"
    ]


def test_a_schema_that_is_not_json_is_refused() -> None:
    # A key JSON cannot hold (a tuple); NaN is the construct's test.
    assert schema_problems({("type",): "object"}) == [
        "details_schema must be JSON (str keys; no NaN or Infinity)"
    ]


def test_a_schema_of_anything_but_an_object_is_refused() -> None:
    assert schema_problems({"type": "array"}) == [NOT_AN_OBJECT]
    assert schema_problems({"properties": {}}) == [NOT_AN_OBJECT]


def test_a_remote_ref_anywhere_in_the_schema_is_refused_before_compiling() -> None:
    # Nested in a list: found all the same. Compiling would fetch the URL (it is not compiled:
    # an address no test may reach stays unreached, and no "not a valid schema" is added).
    nested = {"type": "object", "allOf": [{"$ref": "https://schemas.invalid/invoice.json"}]}

    assert schema_problems(nested) == [ONLY_LOCAL_REFS]
    assert schema_problems({"$ref": "https://schemas.invalid/x.json"}) == [
        NOT_AN_OBJECT,
        ONLY_LOCAL_REFS,
    ]


def test_a_schema_json_schema_itself_refuses_is_reported_with_its_reason() -> None:
    problems = schema_problems({"type": "object", "properties": {"a": {"type": "money"}}})

    assert problems == ["details_schema is not a valid JSON Schema (Unknown type)"]


# --- parse_catalogue: the EVENT_CATALOGUE value the functions read ----------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("{not json", "EVENT_CATALOGUE: must be valid JSON", id="not JSON"),
        pytest.param(
            '["InvoiceVoided"]', "EVENT_CATALOGUE: must be a non-empty JSON object", id="a list"
        ),
        pytest.param("{}", "EVENT_CATALOGUE: must be a non-empty JSON object", id="empty"),
        pytest.param(
            '{"InvoiceVoided": 5}',
            "EVENT_CATALOGUE: InvoiceVoided: details_schema must be a JSON Schema object (a dict)",
            id="schema not an object",
        ),
        pytest.param(
            '{"AccountDeleted": null, "InvoiceVoided": {"type": "string"}}',
            f"EVENT_CATALOGUE: InvoiceVoided: {NOT_AN_OBJECT}",
            id="schema of a string",
        ),
    ],
)
def test_an_event_catalogue_value_breaking_a_rule_is_refused_naming_it(
    value: str, message: str
) -> None:
    with pytest.raises(CatalogueError) as raised:
        parse_catalogue(value)

    assert str(raised.value) == message


def test_a_type_without_a_schema_takes_any_details_object() -> None:
    catalogue = parse_catalogue('{"InvoicePaid": null}')

    assert catalogue.event_types == ("InvoicePaid",)
    catalogue.check("InvoicePaid", {"anything": [1, {"nested": True}]})


# --- check: the refusal names the field and the rule, nothing personal ------------------------


def test_a_field_inside_a_list_is_named_by_its_path_and_index() -> None:
    schema = {
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "items": {"type": "object", "properties": {"amount_cents": {"type": "integer"}}},
            }
        },
    }

    message = _refusal(schema, {"lines": [{"amount_cents": 1}, {"amount_cents": "9.99"}]})

    assert message == 'details.lines[1].amount_cents: must be of type "integer"'


def test_a_rule_without_its_own_wording_is_named_with_its_definition() -> None:
    schema = {"type": "object", "properties": {"note": {"type": "string", "maxLength": 8}}}

    assert (
        _refusal(schema, {"note": "jane.doe@mail.com"}) == "details.note: must satisfy maxLength 8"
    )


@pytest.mark.parametrize(
    "name", ["jane@mail.com", "jane.doe@mail.com", "billing.jane.doe@mail.com"]
)
def test_a_name_that_looks_like_an_address_is_withheld_with_every_piece_of_it(name: str) -> None:
    # fastjsonschema splits names at dots: no piece of the address may show.
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}

    message = _refusal(schema, {name: "x"})

    assert message == (
        'details (under a name that looks like an e-mail address): must be of type "integer"'
    )
    assert not {"jane", "doe", "mail", "billing"} & set(message.replace(".", " ").split())


def test_a_long_name_is_cut_to_sixty_four_characters() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}

    message = _refusal(schema, {"n" * 100: "x"})

    assert message == f'details.{"n" * 64}: must be of type "integer"'


def test_a_long_rule_definition_is_cut_to_eighty_characters() -> None:
    reasons = ["a" * 30, "b" * 30, "c" * 30]
    schema = {"type": "object", "properties": {"reason": {"enum": reasons}}}

    message = _refusal(schema, {"reason": "jane.doe@mail.com"})

    definition = message.removeprefix("details.reason: must be one of ")
    assert len(definition) == 80 and definition.endswith("...")
    assert definition.startswith(f'["{"a" * 30}", "{"b" * 30}"')
