"""AuditPipeline's props checked in one place, before any child is created.

The props are declared in ``props.py`` (type, default); their rules are the table ``RULES`` here,
one row each (the prop, its rule, the condition that breaks it), like aws-cdk's
``validate-props.ts``. Every problem is reported at once, one line each (``AuditPipeline
<prop>: <rule> (got <value>)``; an ``event_types`` rule names its entry instead, from a table of
catalogue rules), so a user fixes them in one round. Unresolved tokens (a CfnParameter's value)
are skipped: they are only known at deployment, where CloudFormation and the services check them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_cdk import Duration, Token

from audit_stack.construct.props import MAX_EVENT_TYPE_INDEX_SHARDS, PROPS, with_defaults
from audit_stack.construct.sealing import HEARTBEAT
from audit_stack.lambda_code import audit_events_module, contract

if TYPE_CHECKING:
    from audit_events import catalogue as _catalogue
else:
    _catalogue = audit_events_module("catalogue")

__all__ = [
    "RULES",
    "PropsError",
    "Rule",
    "event_type_problems",
    "validate_props",
    "validate_publishers",
]

_EVENT_TYPE = re.compile(contract.EVENT_TYPE_PATTERN)
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_ORGANIZATION_ID = re.compile(r"o-[a-z0-9]{10,32}")
# Values in messages are the user's own props (no personal data); bound their length anyway.
_MAX_VALUE_SHOWN = 80


class PropsError(ValueError):
    """Props that break a rule; ``problems`` holds one ``(prop, rule)`` pair per problem."""

    def __init__(self, subject: str, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{subject} {prop}: {rule}" for prop, rule in self.problems))


# The props a rule reads, each of its declared type and known at synthesis (no token).
Known = Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    """One rule on a prop's value: ``broken(props)`` is True when the value breaks it."""

    prop: str
    rule: str
    """The message: ``AuditPipeline <prop>: <rule> (got <value>)``."""
    broken: Callable[[Known], bool]
    reads: tuple[str, ...] = ()
    """Other props the condition reads; the rule is skipped while any of them is unknown."""

    def __post_init__(self) -> None:
        for name in (self.prop, *self.reads):
            if name not in PROPS:
                raise ValueError(f"Rule on {name!r}: no such prop in AuditPipelineProps")


def _seconds(props: Known, name: str) -> float:
    value: Duration | None = props[name]
    return 0.0 if value is None else value.to_seconds()


def _between(name: str, low: int, high: int) -> Callable[[Known], bool]:
    return lambda props: not low <= props[name] <= high


def _whole(value: float, unit: int) -> bool:
    return value % unit == 0


RULES: tuple[Rule, ...] = (
    Rule("max_receive_count", "must be between 1 and 1000", _between("max_receive_count", 1, 1000)),
    Rule(
        "batch_size",
        "must be between 1 and 10 without a max_batching_window",
        lambda p: _seconds(p, "max_batching_window") == 0 and not 1 <= p["batch_size"] <= 10,
        reads=("max_batching_window",),
    ),
    Rule(
        "batch_size",
        "must be between 1 and 10000",
        lambda p: _seconds(p, "max_batching_window") > 0 and not 1 <= p["batch_size"] <= 10_000,
        reads=("max_batching_window",),
    ),
    Rule(
        "max_batching_window",
        "must be at most 5 minutes",
        lambda p: not 0 <= _seconds(p, "max_batching_window") <= 300,
    ),
    Rule(
        "max_concurrency",
        "must be between 2 and 1000 (an SQS event source limit)",
        _between("max_concurrency", 2, 1000),
    ),
    # 6x the timeout is the visibility timeout, capped by SQS at 12 hours; 150 s keeps a
    # backlog's retries quick as well.
    Rule(
        "recorder_timeout",
        "must be between 1 and 150 seconds",
        lambda p: not 1 <= _seconds(p, "recorder_timeout") <= 150,
    ),
    Rule(
        "oldest_message_age_alarm",
        "must be at least 1 minute",
        lambda p: _seconds(p, "oldest_message_age_alarm") < 60,
    ),
    Rule(
        "seal_interval",
        "must be whole minutes between 1 minute and 1 day",
        lambda p: (
            not 60 <= _seconds(p, "seal_interval") <= 86_400
            or not _whole(_seconds(p, "seal_interval"), 60)
        ),
    ),
    Rule(
        "event_type_index_shards",
        f"must be a whole number between 1 and {MAX_EVENT_TYPE_INDEX_SHARDS}",
        _between("event_type_index_shards", 1, MAX_EVENT_TYPE_INDEX_SHARDS),
    ),
    Rule(
        "anchor_retention",
        "must be whole days between 1 day and 100 years",
        lambda p: (
            not 86_400 <= _seconds(p, "anchor_retention") <= 36_500 * 86_400
            or not _whole(_seconds(p, "anchor_retention"), 86_400)
        ),
    ),
    # The records' retention (DynamoDB TTL): whole days, so that RETENTION_DAYS says it
    # exactly, and longer than a record can wait for its seal, so that no record expires before
    # the sealer has signed it (and its expiry).
    Rule(
        "retention",
        "must be whole days between 1 day and 100 years",
        lambda p: (
            p["retention"] is not None
            and (
                not 86_400 <= _seconds(p, "retention") <= 36_500 * 86_400
                or not _whole(_seconds(p, "retention"), 86_400)
            )
        ),
    ),
    Rule(
        "retention",
        "must be longer than seal_interval plus the sealer's 1-hour heartbeat, so that every "
        "record is sealed before it can expire",
        lambda p: (
            p["retention"] is not None
            and _whole(_seconds(p, "retention"), 86_400)
            and 86_400 <= _seconds(p, "retention") <= 36_500 * 86_400
            and _seconds(p, "retention") <= _seconds(p, "seal_interval") + HEARTBEAT.to_seconds()
        ),
        reads=("seal_interval",),
    ),
)
"""Every prop's rules, in the order their messages are reported within a prop (the props
themselves in ``AuditPipelineProps``' order). ``event_types`` has a table of its own below."""


def validate_props(props: Mapping[str, Any]) -> dict[str, Any]:
    """Every prop of ``props`` (AuditPipeline's keywords), defaults filled in; raise PropsError
    naming every unknown name, every value of the wrong type and every broken rule at once."""
    values = with_defaults(props)
    problems: list[tuple[str, str]] = [
        (name, f"is not an AuditPipeline prop{_did_you_mean(name)}")
        for name in values
        if name not in PROPS
    ]
    known: dict[str, Any] = {}
    for name, prop in PROPS.items():
        value = values[name]
        if _is_token(value) or (isinstance(value, Duration) and value.is_unresolved()):
            continue
        if (value is None and prop.default is None) or prop.kind.accepts(value):
            known[name] = value
        else:
            problems.append(
                (name, f"must be {prop.kind.name}, not {type(value).__name__}{_got(value)}")
            )
    for rule in RULES:
        if all(name in known for name in (rule.prop, *rule.reads)) and rule.broken(known):
            problems.append((rule.prop, f"{rule.rule}{_got(values[rule.prop])}"))
    if "event_types" in known:
        # Each message names its own entry: a catalogue is too long to repeat whole.
        problems.extend(("event_types", rule) for rule in event_type_problems(known["event_types"]))
    if problems:
        # In the props' declared order (the README's), as the user reads their call; a sort
        # is stable, so each prop's rules keep the table's order.
        order = [*PROPS, *(name for name in values if name not in PROPS)]
        raise PropsError("AuditPipeline", sorted(problems, key=lambda p: order.index(p[0])))
    return values


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name, PROPS, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


# The catalogue's rules, in the order they are reported: each takes the list of entries and gives
# one message per problem (a list, so that every bad entry is named at once).
_CatalogueRule = Callable[[Sequence[Any]], list[str]]


def _names(entries: Sequence[Any]) -> list[Any]:
    return [entry.name if isinstance(entry, _catalogue.EventType) else entry for entry in entries]


def _not_a_list(entries: Sequence[Any]) -> list[str]:
    if isinstance(entries, str):
        return [f"must be a list of event type names, not one string{_got(entries)}"]
    return []


def _empty(entries: Sequence[Any]) -> list[str]:
    return [] if entries else ["must name at least one event type (e.g. AccountDeleted)"]


def _wrong_entry(entries: Sequence[Any]) -> list[str]:
    return [
        f"entry {index} must be a name (str) or an EventType, not {type(entry).__name__}"
        for index, entry in enumerate(entries)
        if not isinstance(entry, str | _catalogue.EventType)
    ]


def _bad_name(entries: Sequence[Any]) -> list[str]:
    return [
        f"{name!r} must match {contract.EVENT_TYPE_PATTERN} (e.g. InvoiceVoided)"
        for name in _names(entries)
        if isinstance(name, str) and not _is_token(name) and not _EVENT_TYPE.match(name)
    ]


def _duplicate(entries: Sequence[Any]) -> list[str]:
    names = [name for name in _names(entries) if isinstance(name, str)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    return [f"{name!r} is listed more than once" for name in repeated]


def _own_details(entries: Sequence[Any]) -> list[str]:
    return [
        f"{contract.ACCOUNT_DELETED!r} takes no details_schema: its details are the pipeline's "
        "own (deleteAccount's)"
        for entry in entries
        if isinstance(entry, _catalogue.EventType)
        and entry.name == contract.ACCOUNT_DELETED
        and entry.details_schema is not None
    ]


def _bad_schema(entries: Sequence[Any]) -> list[str]:
    return [
        f"{entry.name!r}: {problem}"
        for entry in entries
        if isinstance(entry, _catalogue.EventType)
        and entry.details_schema is not None
        and entry.name != contract.ACCOUNT_DELETED
        for problem in _catalogue.schema_problems(entry.details_schema)
    ]


def _bad_personal_fields(entries: Sequence[Any]) -> list[str]:
    problems = []
    for entry in entries:
        if not isinstance(entry, _catalogue.EventType) or not entry.personal_fields:
            continue
        fields = entry.personal_fields
        if entry.name == contract.ACCOUNT_DELETED:
            problems.append(
                f"{contract.ACCOUNT_DELETED!r} takes no personal_fields: its details are the "
                "pipeline's own (deleteAccount's)"
            )
        elif (
            isinstance(fields, str)
            or not all(isinstance(name, str) and name for name in fields)
            or len(set(fields)) != len(fields)
        ):
            problems.append(
                f"{entry.name!r}: personal_fields must be a list of distinct non-empty field "
                "names (top-level details fields)"
            )
    return problems


def _too_large(entries: Sequence[Any]) -> list[str]:
    try:
        text = _catalogue.catalogue_json(_catalogue.catalogue_schemas(entries))
    except (TypeError, ValueError):
        return []  # a schema that is not JSON is reported by _bad_schema
    size = len(text.encode("utf-8"))
    if size <= contract.MAX_CATALOGUE_BYTES:
        return []
    return [
        f"the catalogue is {size} bytes as JSON; Lambda allows 4 KB of environment variables "
        f"per function, so it must be at most {contract.MAX_CATALOGUE_BYTES} bytes (shorten "
        "the details schemas, or split the types over pipelines)"
    ]


_CATALOGUE_RULES: tuple[_CatalogueRule, ...] = (
    _wrong_entry,
    _bad_name,
    _duplicate,
    _own_details,
    _bad_schema,
    _bad_personal_fields,
    _too_large,
)


def event_type_problems(entries: Sequence[Any]) -> list[str]:
    """Every broken rule of an ``event_types`` catalogue, one message each."""
    for rule in (_not_a_list, _empty):
        if problems := rule(entries):
            return problems  # the entries cannot be checked one by one
    return [problem for rule in _CATALOGUE_RULES for problem in rule(entries)]


def validate_publishers(accounts: Sequence[str], organization_id: str | None) -> None:
    """Raise PropsError naming every bad argument of ``allow_publishers``."""
    problems: list[tuple[str, str]] = []
    if isinstance(accounts, str):
        problems.append(
            ("accounts", f"must be a list of account ids, not one string{_got(accounts)}")
        )
    elif not accounts and organization_id is None:
        problems.append(("accounts", "give accounts, an organization_id, or both"))
    else:
        bad = [
            account
            for account in accounts
            if not _is_token(account)
            and not (isinstance(account, str) and _ACCOUNT_ID.fullmatch(account))
        ]
        if bad:
            problems.append(("accounts", f"each must be a 12-digit AWS account id{_got(bad)}"))
    if (
        organization_id is not None
        and not _is_token(organization_id)
        and not (isinstance(organization_id, str) and _ORGANIZATION_ID.fullmatch(organization_id))
    ):
        problems.append(("organization_id", f"must look like o-abc123def4{_got(organization_id)}"))
    if problems:
        raise PropsError("AuditPipeline allow_publishers", problems)


def _is_token(value: object) -> bool:
    # Only strings and numbers can be tokens; jsii cannot pass other Python objects.
    return isinstance(value, str | int | float) and Token.is_unresolved(value)


def _got(value: object) -> str:
    shown = repr(value)
    if isinstance(value, Duration):
        shown = value.to_human_string()
    if len(shown) > _MAX_VALUE_SHOWN:
        shown = shown[: _MAX_VALUE_SHOWN - 3] + "..."
    return f" (got {shown})"
