"""A pipeline's event catalogue: the event types it records and the JSON Schema of their details.

The construct writes the catalogue into the publisher's and the recorder's environment
(``EVENT_CATALOGUE``, compact JSON ``{"<event type>": <details schema or null>, ...}``); the
``AuditPublisher`` client refuses events outside it before publishing, and the recorder treats
them as poison. Schemas are compiled with ``fastjsonschema``, which the Powertools Lambda layer
ships for its own validation utility (the layer's canary imports it). Error messages name the
field and the broken rule of the schema, never the rejected value: details may be personal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import fastjsonschema

from .contract import ACCOUNT_DELETED, PERSONAL_FIELDS_KEYWORD
from .redaction import BUILT_IN_EVENT_TYPES

__all__ = [
    "CatalogueError",
    "EventCatalogue",
    "EventRuleError",
    "EventType",
    "catalogue_json",
    "catalogue_schemas",
    "parse_catalogue",
    "refuse_addresses",
    "schema_problems",
]

# Something that looks like an e-mail address anywhere in a text: local part, @, dotted domain.
_LOOKS_LIKE_EMAIL = re.compile(
    r"[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+\.[^\s@<>()\[\],;:\".]{2,}"
)
# Names in messages come from the schema or, below additionalProperties, from the sender.
_MAX_NAME_LENGTH = 64
_MAX_DEFINITION_SHOWN = 80
_EMAIL_LIKE_NAME = "a name that looks like an e-mail address"


class CatalogueError(ValueError):
    """An ``EVENT_CATALOGUE`` value that is not a catalogue (a deployment fault, not bad input)."""


class EventRuleError(ValueError):
    """An event that its pipeline's catalogue refuses; ``<field>: <rule>``, never a value."""


@dataclass(frozen=True)
class EventCatalogue:
    """The event types of a pipeline, each with its details schema (None: any JSON object)."""

    schemas: Mapping[str, Mapping[str, Any] | None]
    _validators: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self.schemas)

    def knows(self, event_type: object) -> bool:
        """Whether the pipeline records ``event_type``: declared, or built in."""
        return event_type in self.schemas or event_type in BUILT_IN_EVENT_TYPES

    def personal_fields(self, event_type: str) -> tuple[str, ...]:
        """The top-level ``details`` fields of ``event_type`` declared personal (pseudonymised
        at publish; the only ones that may hold an e-mail address)."""
        schema = self.schemas.get(event_type)
        return tuple(schema.get(PERSONAL_FIELDS_KEYWORD, ())) if schema else ()

    def check(self, event_type: str, details: Mapping[str, Any]) -> None:
        """Raise EventRuleError if the catalogue has no ``event_type`` (nor is it built in:
        ``redaction.BUILT_IN_EVENT_TYPES``), ``details`` breaks its schema, or a field not
        declared personal holds something that looks like an e-mail address (anywhere, names
        included: details are kept for good).

        A personal field is checked in its stored form, a string (its pseudonym, or its normal
        form in clear): the publisher checks the value itself as it checks a subject.
        """
        if event_type in BUILT_IN_EVENT_TYPES:
            # Recorded by every pipeline with its own schema, whatever it declares (a redaction
            # entry): a catalogue cannot loosen it.
            schema: Mapping[str, Any] | None = BUILT_IN_EVENT_TYPES[event_type]
        elif event_type in self.schemas:
            schema = self.schemas[event_type]
        else:
            raise EventRuleError(
                f"event_type: must be one of this pipeline's event types "
                f"({', '.join(sorted(self.schemas))})"
            )
        if schema is not None:
            validate = self._validators.get(event_type)
            if validate is None:
                validate = self._validators[event_type] = _compiled(
                    _schema_text(_stored_form(schema))
                )
            try:
                validate(details)
            except fastjsonschema.JsonSchemaValueException as error:
                raise EventRuleError(_message(error)) from None
        if event_type != ACCOUNT_DELETED:
            # AccountDeleted's details are the pipeline's own ({"email": ...} only in clear).
            refuse_addresses(details, self.personal_fields(event_type))

    def to_json(self) -> str:
        return catalogue_json(self.schemas)


def catalogue_json(schemas: Mapping[str, Mapping[str, Any] | None]) -> str:
    """The catalogue's one text: compact, the event types in the order given."""
    return json.dumps(dict(schemas), separators=(",", ":"), sort_keys=False, allow_nan=False)


def parse_catalogue(text: str) -> EventCatalogue:
    """The catalogue in an ``EVENT_CATALOGUE`` value; CatalogueError if it is not one."""
    try:
        document = json.loads(text)
    except ValueError:
        raise CatalogueError("EVENT_CATALOGUE: must be valid JSON") from None
    if not isinstance(document, dict) or not document:
        raise CatalogueError("EVENT_CATALOGUE: must be a non-empty JSON object")
    for event_type, schema in document.items():
        if schema is None:
            continue
        problems = schema_problems(schema)
        if problems:
            raise CatalogueError(f"EVENT_CATALOGUE: {event_type}: {problems[0]}")
    return EventCatalogue(document)


def schema_problems(schema: object) -> list[str]:
    """What makes ``schema`` unusable as a details schema (empty when it is usable)."""
    if not isinstance(schema, Mapping):
        return ["details_schema must be a JSON Schema object (a dict)"]
    try:
        text = _schema_text(schema)
    except (TypeError, ValueError):
        return ["details_schema must be JSON (str keys; no NaN or Infinity)"]
    problems = []
    if schema.get("type") != "object":
        problems.append('details_schema must have "type": "object" (details are a JSON object)')
    personal = schema.get(PERSONAL_FIELDS_KEYWORD)
    if personal is not None and (
        not isinstance(personal, list)
        or not all(isinstance(name, str) and name for name in personal)
        or len(set(personal)) != len(personal)
    ):
        problems.append("personal_fields must be distinct non-empty field names")
    if any(not ref.startswith("#") for ref in _refs(schema)):
        # fastjsonschema would fetch a remote $ref over the network while validating.
        problems.append("details_schema may only use local $ref (starting with #)")
        return problems
    try:
        _compiled(text)
    except (fastjsonschema.JsonSchemaDefinitionException, re.error, ValueError, TypeError) as error:
        # re.error: a pattern that is not a regular expression.
        problems.append(f"details_schema is not a valid JSON Schema ({_bounded(str(error))})")
    return problems


def refuse_addresses(details: Mapping[str, Any], personal: Sequence[str] = ()) -> None:
    """EventRuleError naming the first place in ``details`` (outside the ``personal`` fields)
    that looks like an e-mail address: an undeclared address would be stored for good."""
    for name, value in details.items():
        if name in personal:
            continue
        where = _address_in(value, f"details.{_shown_name(name)}")
        if where is None and _LOOKS_LIKE_EMAIL.search(str(name)):
            where = "details"
        if where is not None:
            raise EventRuleError(
                f"{where}: must not hold an e-mail address unless the field is declared personal "
                "(EventType(..., personal_fields=[...]): then it is pseudonymised at publish)"
            )


def _address_in(value: object, where: str) -> str | None:
    if isinstance(value, str):
        return where if _LOOKS_LIKE_EMAIL.search(value) else None
    if isinstance(value, Mapping):
        for name, item in value.items():
            if _LOOKS_LIKE_EMAIL.search(str(name)):
                return where
            found = _address_in(item, f"{where}.{_shown_name(name)}")
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _address_in(item, f"{where}[{index}]")
            if found is not None:
                return found
    return None


def _stored_form(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` with each personal field's own schema replaced by what is stored: a string."""
    personal = schema.get(PERSONAL_FIELDS_KEYWORD) or ()
    properties = schema.get("properties")
    if not personal or not isinstance(properties, Mapping):
        return schema
    stored = {
        name: ({"type": "string"} if name in personal else definition)
        for name, definition in properties.items()
    }
    return {**schema, "properties": stored}


def _schema_text(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, separators=(",", ":"), sort_keys=True, allow_nan=False)


@lru_cache(maxsize=64)
def _compiled(schema_text: str) -> Any:
    # By text, so every catalogue (and every warm invocation) compiles each schema once.
    return fastjsonschema.compile(json.loads(schema_text))


def _refs(node: object) -> list[str]:
    if isinstance(node, Mapping):
        found = [str(node["$ref"])] if "$ref" in node else []
        for value in node.values():
            found.extend(_refs(value))
        return found
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _message(error: fastjsonschema.JsonSchemaValueException) -> str:
    """``details.<path>: <rule>``, from the schema's side of the error only."""
    parts = [str(part) for part in (error.path or ["data"])[1:]]
    if any("@" in part for part in parts):
        # fastjsonschema splits names at dots, so "jane.doe@mail.com" arrives as three parts:
        # the ones beside the part with "@" may be pieces of the address too. None is shown.
        where = f"details (under {_EMAIL_LIKE_NAME})"
    else:
        names = [_shown_name(part) for part in parts]
        where = "details" + "".join(f"[{n}]" if n.isdigit() else f".{n}" for n in names)
    rule, definition = error.rule, error.rule_definition
    if rule == "type":
        what = f"must be of type {_definition(definition)}"
    elif rule == "required":
        what = f"must have the properties {_definition(definition)}"
    elif rule == "additionalProperties":
        what = "must have no properties other than the schema's"
    elif rule == "enum":
        what = f"must be one of {_definition(definition)}"
    elif rule == "pattern":
        what = f"must match {_definition(definition)}"
    elif rule is None:
        what = "must match the schema"
    else:
        what = f"must satisfy {rule} {_definition(definition)}"
    return f"{where}: {what}"


def _shown_name(part: str) -> str:
    return part[:_MAX_NAME_LENGTH]


def _definition(definition: object) -> str:
    return _bounded(json.dumps(definition, ensure_ascii=False, default=str))


def _bounded(text: str) -> str:
    if len(text) > _MAX_DEFINITION_SHOWN:
        return text[: _MAX_DEFINITION_SHOWN - 3] + "..."
    return text


@dataclass(frozen=True)
class EventType:
    """One entry of a pipeline's catalogue: an event type and, optionally, the JSON Schema its
    ``details`` must match (``None``: any JSON object of at most MAX_DETAILS_BYTES)::

        EventType("InvoiceVoided", details_schema={
            "type": "object",
            "properties": {"invoice_id": {"type": "string"}, "amount_cents": {"type": "integer"}},
            "required": ["invoice_id"],
            "additionalProperties": False,
        })
    """

    name: str
    details_schema: Mapping[str, Any] | None = None
    personal_fields: Sequence[str] = ()
    """Top-level ``details`` fields that hold personal data (an e-mail address, a customer
    id): each must be a string, normalised as a subject is and recorded by its keyed
    pseudonym (its normal form in a ``subject_in_clear`` pipeline). Only these fields may hold
    something that looks like an e-mail address; elsewhere it is refused at publish."""


def catalogue_schemas(
    event_types: Sequence[str | EventType],
) -> dict[str, Mapping[str, Any] | None]:
    """``{name: details schema or None}`` of a catalogue's declarations (names or EventTypes);
    personal fields are an annotation of the schema (PERSONAL_FIELDS_KEYWORD)."""
    return {
        entry.name if isinstance(entry, EventType) else entry: (
            _with_personal_fields(entry) if isinstance(entry, EventType) else None
        )
        for entry in event_types
    }


def _with_personal_fields(entry: EventType) -> Mapping[str, Any] | None:
    if isinstance(entry.personal_fields, str):
        # A lone string would be read as its letters.
        return {**(entry.details_schema or {}), PERSONAL_FIELDS_KEYWORD: entry.personal_fields}
    if not entry.personal_fields:
        return entry.details_schema
    schema = entry.details_schema or {"type": "object"}
    return {**schema, PERSONAL_FIELDS_KEYWORD: list(entry.personal_fields)}
