"""AuditPipeline's props, declared once: each prop's type, default, meaning and AuditStack context.

``AuditPipelineProps`` is the one declaration. Each field's ``Annotated`` metadata is a
:class:`Prop`: the default (what an omitted prop, or None, means), the type a value must have at
run time (:class:`Kind`), the README's meaning, and, where ``AuditStack`` reads the prop from
``cdk -c name=value``, its :class:`ContextKey`. ``AuditPipeline(**props)`` takes these keywords
(``Unpack[AuditPipelineProps]``), ``validation.py`` holds the rules on their values, and the
README's props table is :func:`readme_table`'s output (a test compares them).

To add a prop: add one field here (with its ``Prop``), its rules to ``validation.RULES`` if it
has any, use ``props["name"]`` in ``AuditPipeline``, and paste :func:`readme_table`'s new row
into the README (``python -m audit_stack.construct.props`` prints the table).
"""

# No ``from __future__ import annotations``: the Annotated metadata is evaluated once, here.
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypedDict, cast, get_type_hints

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from audit_stack.lambda_code import audit_events_module

if TYPE_CHECKING:
    from audit_events import catalogue as _catalogue
else:
    _catalogue = audit_events_module("catalogue")

__all__ = [
    "DEFAULT_EVENT_TYPE_INDEX_SHARDS",
    "MAX_EVENT_TYPE_INDEX_SHARDS",
    "PROPS",
    "AuditPipelineProps",
    "ContextKey",
    "Kind",
    "Prop",
    "props_from_context",
    "readme_table",
    "with_defaults",
]

# 10,000 events/s of one type over 16 shards: about 625 writes/s per index partition key, under
# DynamoDB's 1,000 writes/s per partition with room for the spread of a hash.
DEFAULT_EVENT_TYPE_INDEX_SHARDS = 16
MAX_EVENT_TYPE_INDEX_SHARDS = 256


@dataclass(frozen=True)
class Kind:
    """The type a prop's value must have at run time; a wrong type would otherwise fail deep
    inside aws-cdk-lib with an error that names none of the props."""

    name: str
    """How the error message names it: ``must be <name>``."""
    accepts: Callable[[Any], bool]


def _whole_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


WHOLE_NUMBER = Kind("a whole number", _whole_number)
FLAG = Kind("True or False", lambda value: isinstance(value, bool))


def duration(example: str) -> Kind:
    """A ``Duration``; ``example`` shows one in the error message."""
    return Kind(f"a Duration (e.g. {example})", lambda value: isinstance(value, Duration))


def implementing(interface: str, attribute: str) -> Kind:
    """A jsii interface (a Protocol, so no isinstance): recognised by one of its attributes;
    ``interface`` is named with its article ("an s3.IBucket")."""
    return Kind(interface, _has(attribute))


def _has(attribute: str) -> Callable[[Any], bool]:
    return lambda value: hasattr(value, attribute)


@dataclass(frozen=True)
class ContextKey:
    """``cdk -c <name>=VALUE``: how ``AuditStack`` sets the prop from CDK context."""

    name: str
    value: Callable[[Construct, str], Any]
    """The prop's value from the context's string, made in the stack (e.g. an imported bucket)."""
    shown: str = "VALUE"
    """The placeholder the README shows: ``-c name=<shown>``."""


@dataclass(frozen=True)
class Prop:
    """One prop's declaration (the metadata of its field in ``AuditPipelineProps``)."""

    default: Any
    """The value when the prop is omitted or None; None: the prop is off."""
    kind: Kind
    meaning: str
    """The README's words for it, the rule's range included."""
    shown_default: str | None = None
    """The README's default, where the value alone would not say it (e.g. "a new bucket")."""
    context: ContextKey | None = None


class AuditPipelineProps(TypedDict, total=False):
    """AuditPipeline's props (README "Props"), all optional; None means the default."""

    max_receive_count: Annotated[
        int,
        Prop(5, WHOLE_NUMBER, "receives before a message moves to the DLQ (1-1000)"),
    ]
    batch_size: Annotated[
        int,
        Prop(
            10,
            WHOLE_NUMBER,
            "messages per recorder invocation (1-10; up to 10,000 with a batching window)",
        ),
    ]
    max_batching_window: Annotated[
        Duration | None,
        Prop(
            None,
            duration("Duration.seconds(5)"),
            "how long the event source waits to fill a batch (≤ 5 min)",
        ),
    ]
    max_concurrency: Annotated[
        int,
        Prop(
            5,
            WHOLE_NUMBER,
            "most concurrent recorder invocations (2-1000): a backlog cannot overrun the table",
        ),
    ]
    recorder_timeout: Annotated[
        Duration | None,
        Prop(
            Duration.seconds(30),
            duration("Duration.seconds(30)"),
            "recorder timeout (1-150 s); the queue's visibility timeout is 6x it",
        ),
    ]
    event_types: Annotated[
        Sequence[str | _catalogue.EventType],
        Prop(
            ("AccountDeleted",),
            # A str is a Sequence too: the catalogue's rules say it must be a list.
            Kind(
                "a list of event type names or EventType entries",
                lambda value: isinstance(value, Sequence),
            ),
            "the catalogue: event type names or `EventType(name, details_schema={...})` "
            "entries; the queue subscribes to them, the recorder and the client refuse others "
            "and details off their schema; the deleteAccount function exists only with "
            "`AccountDeleted` ([Publish from your own services](#publish-from-your-own-services))",
            shown_default='`["AccountDeleted"]`',
        ),
    ]
    encryption_key: Annotated[
        kms.IKey | None,
        Prop(
            None,
            implementing("a kms.IKey", "key_arn"),
            "a customer-managed KMS key for topic, queues and table",
        ),
    ]
    removal_policy: Annotated[
        RemovalPolicy,
        Prop(
            RemovalPolicy.RETAIN,
            Kind("a RemovalPolicy", lambda value: isinstance(value, RemovalPolicy)),
            "table, queues and log groups on `cdk destroy`; `DESTROY` also lifts deletion "
            "protection",
        ),
    ]
    log_retention: Annotated[
        logs.RetentionDays,
        Prop(
            logs.RetentionDays.ONE_YEAR,
            Kind("a logs.RetentionDays", lambda value: isinstance(value, logs.RetentionDays)),
            "retention of the functions' log groups",
            shown_default="1 year",
        ),
    ]
    oldest_message_age_alarm: Annotated[
        Duration | None,
        Prop(
            Duration.minutes(15),
            duration("Duration.minutes(15)"),
            "alarm when the oldest queued message is this old (≥ 1 min)",
        ),
    ]
    alarm_action: Annotated[
        cloudwatch.IAlarmAction | None,
        Prop(
            None,
            implementing("a cloudwatch.IAlarmAction", "bind"),
            "where every alarm and its return to OK go (e.g. `SnsAction(pager_topic)`)",
            shown_default="none (a synth warning)",
        ),
    ]
    dashboard: Annotated[bool, Prop(False, FLAG, "also create a CloudWatch dashboard")]
    seal_interval: Annotated[
        Duration | None,
        Prop(
            Duration.minutes(5),
            duration("Duration.minutes(5)"),
            "the longest a new record waits to be signed into the digest chain: the batching "
            "window of the table's stream into the sealer (at most 5 min, Lambda's limit) "
            "and the heartbeat schedule's rate (whole minutes, 1 min - 1 day)",
        ),
    ]
    subject_in_clear: Annotated[
        bool,
        Prop(
            False,
            FLAG,
            "record the e-mail address itself instead of its keyed pseudonym (no secret); see "
            "[the trade-off](#pseudonymous-subjects-the-default)",
        ),
    ]
    event_type_index: Annotated[
        bool,
        Prop(True, FLAG, "keep the `by-event-type-shard` index (one write unit per event)"),
    ]
    event_type_index_shards: Annotated[
        int,
        Prop(
            DEFAULT_EVENT_TYPE_INDEX_SHARDS,
            WHOLE_NUMBER,
            f"partition keys per event type in that index (1-{MAX_EVENT_TYPE_INDEX_SHARDS}); "
            "only ever raise it",
        ),
    ]
    anchor_bucket: Annotated[
        s3.IBucket | None,
        Prop(
            None,
            implementing("an s3.IBucket", "bucket_arn"),
            "where each signed checkpoint is anchored (an `s3.IBucket` with Object Lock, "
            "possibly in another account); the created one has Object Lock, versioning, "
            "SSE-S3, no public access, TLS only, and is retained on `cdk destroy` "
            "([docs/INTEGRITY.md](docs/INTEGRITY.md))",
            shown_default="a new bucket",
            context=ContextKey(
                "anchor_bucket_name",
                lambda scope, name: s3.Bucket.from_bucket_name(scope, "AnchorBucket", name),
                shown="NAME",
            ),
        ),
    ]
    anchor_retention: Annotated[
        Duration | None,
        Prop(
            Duration.days(365),
            duration("Duration.days(365)"),
            "how long each anchored checkpoint is locked in COMPLIANCE mode (whole days, "
            "1 day - 100 years)",
        ),
    ]
    retention: Annotated[
        Duration | None,
        Prop(
            None,
            duration("Duration.days(2557)"),
            "how long each record and idempotency marker is kept: the recorder writes "
            "`expires_at` = `recorded_at` + retention (epoch seconds, inside the record hash), "
            "the table's DynamoDB TTL deletes the item after then, and `audit verify` reports "
            "it as *expired under the policy*, not missing. Whole days, 1 day - 100 years, "
            "longer than `seal_interval` + the sealer's 1-hour heartbeat "
            "([Retention](#retention-and-what-stays))",
            shown_default="none (a synth warning): kept for the life of the table",
            context=ContextKey("retention_days", lambda scope, days: _days(days), shown="N"),
        ),
    ]


def _days(text: str) -> Duration:
    """``-c retention_days=N`` (text on the command line, a number in cdk.json) as days; the
    rules check the range."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"-c retention_days: must be a whole number of days (got {text!r})")
    return Duration.days(int(text))


def _declarations() -> dict[str, Prop]:
    hints = get_type_hints(AuditPipelineProps, include_extras=True)
    declared: dict[str, Prop] = {}
    for name, hint in hints.items():
        found = [meta for meta in getattr(hint, "__metadata__", ()) if isinstance(meta, Prop)]
        if len(found) != 1:
            raise TypeError(f"AuditPipelineProps {name}: declare it as Annotated[type, Prop(...)]")
        declared[name] = found[0]
    return declared


PROPS: Mapping[str, Prop] = _declarations()
"""Every prop's declaration, in the order of ``AuditPipelineProps`` (the order errors follow)."""


def with_defaults(props: Mapping[str, Any]) -> dict[str, Any]:
    """``props`` with every declared prop: a missing or None one is its default. Names that are
    no prop are kept (validation reports them)."""
    filled = dict(props)
    for name, prop in PROPS.items():
        if filled.get(name) is None:
            filled[name] = prop.default
    return filled


def props_from_context(scope: Construct) -> AuditPipelineProps:
    """The props ``cdk -c name=VALUE`` sets (each prop with a ``ContextKey``), made in
    ``scope``."""
    found: dict[str, Any] = {}
    for name, prop in PROPS.items():
        if prop.context is None:
            continue
        value = scope.node.try_get_context(prop.context.name)
        if value is not None and value != "":
            found[name] = prop.context.value(scope, str(value))
    return cast(AuditPipelineProps, found)


def _shown_default(prop: Prop) -> str:
    if prop.shown_default is not None:
        return prop.shown_default
    value = prop.default
    if value is None:
        return "none"
    if isinstance(value, Duration):
        return _human(value)
    if isinstance(value, Enum):
        return f"`{value.name}`"
    return f"`{value!r}`"


def _human(value: Duration) -> str:
    for unit, seconds in (("days", 86_400), ("min", 60)):
        whole, rest = divmod(int(value.to_seconds()), seconds)
        if whole and not rest:
            return f"{whole} {unit}"
    return f"{value.to_seconds():g} s"


def readme_table() -> str:
    """The README's props table, one row per prop, in declaration order."""
    rows = ["| prop | default | meaning |", "|------|---------|---------|"]
    for name, prop in PROPS.items():
        meaning = prop.meaning
        if prop.context is not None:
            meaning += f"; `AuditStack`: `-c {prop.context.name}={prop.context.shown}`"
        rows.append(f"| `{name}` | {_shown_default(prop)} | {meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(readme_table(), end="")
