"""AuditPipeline's props checked in one place, before any child is created.

Every problem is reported at once, one line each (``AuditPipeline <prop>: <rule> (got <value>)``;
an ``event_types`` rule names its entry instead, from a table of catalogue rules), so a user
fixes them in one round. Unresolved tokens (a CfnParameter's value) are skipped: they
are only known at deployment, where CloudFormation and the services check them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aws_cdk import Duration, RemovalPolicy, Token
from aws_cdk import aws_logs as logs

from audit_stack.lambda_code import audit_events_module, contract

if TYPE_CHECKING:
    from audit_events import catalogue as _catalogue
else:
    _catalogue = audit_events_module("catalogue")

__all__ = [
    "MAX_EVENT_TYPE_INDEX_SHARDS",
    "PropsError",
    "event_type_problems",
    "validate_props",
    "validate_publishers",
]

MAX_EVENT_TYPE_INDEX_SHARDS: Final = 256
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


@dataclass(frozen=True)
class _Kind:
    name: str
    accepts: Callable[[Any], bool]
    optional: bool = False


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_duration(value: object) -> bool:
    return isinstance(value, Duration)


_WHOLE_NUMBER = _Kind("a whole number", _is_int)
_FLAG = _Kind("True or False", _is_bool)

# The type each prop must have; a wrong type would otherwise fail deep inside aws-cdk-lib with
# an AttributeError that names none of the props.
_KINDS: Mapping[str, _Kind] = {
    "max_receive_count": _WHOLE_NUMBER,
    "batch_size": _WHOLE_NUMBER,
    "max_batching_window": _Kind("a Duration (e.g. Duration.seconds(5))", _is_duration, True),
    "max_concurrency": _WHOLE_NUMBER,
    "recorder_timeout": _Kind("a Duration (e.g. Duration.seconds(30))", _is_duration, True),
    # A str is a Sequence too: the rules below say it must be a list.
    "event_types": _Kind(
        "a list of event type names or EventType entries", lambda v: isinstance(v, Sequence)
    ),
    "encryption_key": _Kind("a kms.IKey", lambda v: hasattr(v, "key_arn"), True),
    "removal_policy": _Kind("a RemovalPolicy", lambda v: isinstance(v, RemovalPolicy)),
    "log_retention": _Kind("a logs.RetentionDays", lambda v: isinstance(v, logs.RetentionDays)),
    "oldest_message_age_alarm": _Kind("a Duration (e.g. Duration.minutes(15))", _is_duration, True),
    "alarm_action": _Kind("a cloudwatch.IAlarmAction", lambda v: hasattr(v, "bind"), True),
    "dashboard": _FLAG,
    "seal_interval": _Kind("a Duration (e.g. Duration.minutes(5))", _is_duration, True),
    "subject_in_clear": _FLAG,
    "event_type_index": _FLAG,
    "event_type_index_shards": _WHOLE_NUMBER,
    "anchor_bucket": _Kind("an s3.IBucket", lambda v: hasattr(v, "bucket_arn"), True),
    "anchor_retention": _Kind("a Duration (e.g. Duration.days(365))", _is_duration, True),
}


def validate_props(props: Mapping[str, Any]) -> None:
    """Raise PropsError naming every prop of ``props`` (AuditPipeline's keyword arguments, None
    for a default) that has the wrong type or breaks its rule."""
    problems: list[tuple[str, str]] = []
    typed: dict[str, Any] = {}
    for name, kind in _KINDS.items():
        value = props[name]
        if _is_token(value) or (value is None and kind.optional):
            continue
        if kind.accepts(value):
            typed[name] = value
        else:
            problems.append((name, f"must be {kind.name}, not {type(value).__name__}{_got(value)}"))
    wrong = {name for name, _ in problems}
    for name, rule in _range_problems(typed, wrong):
        problems.append((name, f"{rule}{_got(props[name])}"))
    if "event_types" in typed:
        # Each message names its own entry: a catalogue is too long to repeat whole.
        problems.extend(("event_types", rule) for rule in event_type_problems(typed["event_types"]))
    if problems:
        # In the constructor's order, as the user reads their call.
        order = list(_KINDS)
        raise PropsError("AuditPipeline", sorted(problems, key=lambda p: order.index(p[0])))


def _range_problems(props: Mapping[str, Any], wrong: set[str]) -> list[tuple[str, str]]:
    """The rules of the props in ``props`` (each of the right type, none a token); ``wrong``:
    the props of the wrong type, whose rules cannot be checked."""
    problems: list[tuple[str, str]] = []

    def seconds(name: str) -> float | None:
        value: Duration | None = props.get(name)
        return None if value is None or value.is_unresolved() else value.to_seconds()

    receives = props.get("max_receive_count")
    if receives is not None and not 1 <= receives <= 1000:
        problems.append(("max_receive_count", "must be between 1 and 1000"))
    # No window (the default) is 0 s; a window of the wrong type or unresolved is unknown.
    window = 0.0 if "max_batching_window" not in props else seconds("max_batching_window")
    if window is not None and not 0 <= window <= 300:
        problems.append(("max_batching_window", "must be at most 5 minutes"))
    batch_size = props.get("batch_size")
    if batch_size is not None:
        if window == 0 and "max_batching_window" not in wrong and not 1 <= batch_size <= 10:
            problems.append(
                ("batch_size", "must be between 1 and 10 without a max_batching_window")
            )
        elif not 1 <= batch_size <= 10_000:
            problems.append(("batch_size", "must be between 1 and 10000"))
    concurrency = props.get("max_concurrency")
    if concurrency is not None and not 2 <= concurrency <= 1000:
        problems.append(
            ("max_concurrency", "must be between 2 and 1000 (an SQS event source limit)")
        )
    timeout = seconds("recorder_timeout")
    if timeout is not None and not 1 <= timeout <= 150:
        # 6x the timeout is the visibility timeout, capped by SQS at 12 hours; 150 s keeps a
        # backlog's retries quick as well.
        problems.append(("recorder_timeout", "must be between 1 and 150 seconds"))
    age = seconds("oldest_message_age_alarm")
    if age is not None and age < 60:
        problems.append(("oldest_message_age_alarm", "must be at least 1 minute"))
    seal = seconds("seal_interval")
    if seal is not None and (not 60 <= seal <= 86_400 or seal % 60):
        problems.append(("seal_interval", "must be whole minutes between 1 minute and 1 day"))
    retention = seconds("anchor_retention")
    if retention is not None and (not 86_400 <= retention <= 36_500 * 86_400 or retention % 86_400):
        problems.append(("anchor_retention", "must be whole days between 1 day and 100 years"))
    shards = props.get("event_type_index_shards")
    if shards is not None and not 1 <= shards <= MAX_EVENT_TYPE_INDEX_SHARDS:
        problems.append(
            (
                "event_type_index_shards",
                f"must be a whole number between 1 and {MAX_EVENT_TYPE_INDEX_SHARDS}",
            )
        )
    return problems


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
