"""PartiQL ``INSERT`` with parameters in ``BatchExecuteStatement``, which moto's parser refuses.

The recorder writes a batch's events with one ``BatchExecuteStatement`` of statements
``INSERT INTO "Table" VALUE {'name': ?, ...}`` (one per event, every value a parameter). moto
5.2.5 fails the whole request on such a statement (its parser cannot type a ``?`` inside
``VALUE``, answering 500), so this hook answers those statements itself, with DynamoDB's
documented semantics (developer guide, "PartiQL insert statements for DynamoDB" and the API
reference's ``BatchStatementError``):

- each statement succeeds or fails on its own, in the request's order;
- an INSERT whose key already exists writes nothing and answers ``DuplicateItem``;
- an invalid item (a missing or mistyped key, too large) answers ``ValidationError``, a table
  that does not exist ``ResourceNotFound``.

A stored item goes through moto's own ``put_item``, so its stream record (``INSERT``) is the one
a PutItem makes. Every other statement (any other form, any other verb) is moto's, as before.
Installed with the emulator's other moto hooks, and by the Lambda unit tests' ``aws`` fixture,
which run the recorder against moto in-process.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

import moto.dynamodb.models
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    DynamodbException,
    ResourceNotFoundException,
)

__all__ = ["DUPLICATE_ITEM", "PartiqlInsertHooks", "parse_insert"]

# Typed as Any: the hook replaces a method of moto's backend class.
_MODELS: Any = moto.dynamodb.models

DUPLICATE_ITEM: Final = "DuplicateItem"
"""BatchStatementError code of an INSERT whose key exists (API reference, BatchStatementError)."""
_DUPLICATE_MESSAGE: Final = "Duplicate primary key exists in table"
# The one form answered here: a quoted table name and a tuple of quoted names, each value "?".
_INSERT: Final = re.compile(r'\s*INSERT\s+INTO\s+"([^"]+)"\s+VALUE\s+\{(.*)\}\s*', re.I | re.S)
_FIELD: Final = re.compile(r"\s*'([^',]+)'\s*:\s*\?\s*")


def parse_insert(
    statement: str, parameters: list[dict[str, Any]]
) -> tuple[str, dict[str, Any]] | None:
    """The table and item of ``INSERT INTO "T" VALUE {'a': ?, ...}`` with one parameter per
    name, or None for any other statement (left to moto)."""
    found = _INSERT.fullmatch(statement)
    if found is None:
        return None
    fields = [_FIELD.fullmatch(field) for field in found.group(2).split(",")]
    if not all(fields):
        return None
    names = [field.group(1) for field in fields if field is not None]
    if len(names) != len(parameters) or len(set(names)) != len(names):
        return None
    return found.group(1), dict(zip(names, parameters, strict=True))


def _insert(backend: Any, table_name: str, item: dict[str, Any]) -> dict[str, Any]:
    """One INSERT statement's response entry."""
    try:
        table = backend.get_table(table_name)
        backend.put_item(
            table_name,
            item,
            condition_expression="attribute_not_exists(#key)",
            expression_attribute_names={"#key": table.hash_key_attr},
        )
    except ConditionalCheckFailed:
        return {
            "TableName": table_name,
            "Error": {"Code": DUPLICATE_ITEM, "Message": _DUPLICATE_MESSAGE},
        }
    except ResourceNotFoundException:
        return {"Error": {"Code": "ResourceNotFound", "Message": "Requested resource not found"}}
    except DynamodbException as error:
        return {
            "TableName": table_name,
            "Error": {"Code": "ValidationError", "Message": getattr(error, "message", str(error))},
        }
    return {"TableName": table_name}


def _batch_execute_statement(
    original: Callable[[Any, list[dict[str, Any]]], list[dict[str, Any]]],
) -> Callable[[Any, list[dict[str, Any]]], list[dict[str, Any]]]:
    def batch_execute_statement(
        backend: Any, statements: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        responses: list[dict[str, Any]] = []
        for statement in statements:
            insert = parse_insert(statement["Statement"], statement.get("Parameters", []))
            if insert is None:
                responses.extend(original(backend, [statement]))
            else:
                responses.append(_insert(backend, *insert))
        return responses

    return batch_execute_statement


class PartiqlInsertHooks:
    """Installs the replacement above into moto's DynamoDB backend, and removes it."""

    def __init__(self) -> None:
        self._original: Any = None

    def install(self) -> None:
        if self._original is not None:
            return
        self._original = _MODELS.DynamoDBBackend.batch_execute_statement
        _MODELS.DynamoDBBackend.batch_execute_statement = _batch_execute_statement(self._original)

    def uninstall(self) -> None:
        if self._original is None:
            return
        _MODELS.DynamoDBBackend.batch_execute_statement = self._original
        self._original = None
