"""``audit``: the operator CLI of the audit pipeline, for a deployed stack or the local emulator.

Every command finds its AuditPipeline's queues, table and functions in the stack's template
(CloudFormation GetTemplate: the marks the construct adds) and their physical names with
ListStackResources, so one code path serves AWS (``--stack``, ``--pipeline``, ``--profile``,
``--region``) and the emulator (``--local``, ``--endpoint-url``), for any stack holding any number
of pipelines.

Exit codes: 0 done (``status``: HEALTHY; ``verify``: everything checks out); 1 operational error
(no credentials, stack not found, endpoint unreachable, an AWS error) or ``verify`` findings; 2
usage error (bad option or date, input the publisher rejects); 3 ``status`` is UNHEALTHY; 130
interrupted.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import heapq
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import boto3
import botocore.loaders
import botocore.session
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from audit_stack import discovery, lambda_code
from audit_stack.discovery import PipelineNotFoundError, find_pipelines, select_pipeline

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNHEALTHY = 3
EXIT_INTERRUPTED = 130

DEFAULT_STACK = "AuditPipelineStack"
# Where `python -m audit_stack.local up` listens unless told otherwise, in its default region.
LOCAL_PORT = 4599
LOCAL_ENDPOINT_URL = f"http://127.0.0.1:{LOCAL_PORT}"
LOCAL_REGION = "us-east-1"
# The emulator ignores credentials, but requests must still be signed.
_DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

# The table's data model (README "Data model"); tests/cli checks it against the template.
PARTITION_KEY = "subject"
SORT_KEY = "event_key"
EVENT_TYPE_INDEX = "by-event-type-shard"
EVENT_TYPE_SHARD_ATTRIBUTE = "event_type_shard"
EVENT_TYPE_ATTRIBUTE = "event_type"
SUBJECT_TYPE_PSEUDONYM = "hmac-sha256"
# How `trail` shows the details of a record whose subject is a pseudonym: none are stored.
DETAILS_NOT_STORED = "(no personal details stored)"
# Shards queried at once by `events`.
_MAX_PARALLEL_QUERIES = 16
# An event key is "<occurred_at>#<event_id>"; "~" sorts after "#" and every id character, so
# "<timestamp>~" is an upper bound for every key of that timestamp.
_KEY_UPPER_BOUND_SUFFIX = "~"

# The publisher's error type for a payload that breaks a rule (lambdas/audit_events/event.py).
INVALID_PAYLOAD_ERROR = "InvalidPayloadError"
# The event schema versions the recorder understands (README "The audit event").
_SCHEMA_VERSIONS = (1, 2)
_EVENT_FIELDS = ("schema_version", "event_id", "event_type", "occurred_at", "subject", "source")

# `dlq show` hides the messages it has read for at most this long, then makes them visible again
# at once; if the CLI dies in between, they come back by themselves when it ends.
_PEEK_HOLD_SECONDS = 30
_REDRIVE_POLL_SECONDS = (0.2, 2.0)
_MAX_CELL = 48


class UsageError(Exception):
    """Bad command-line input: exit code 2."""


class OperatorError(Exception):
    """A failure to report in one line, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- target: a deployed stack, on AWS or in the emulator ---------------------------------------


@dataclass
class Target:
    """The pipeline the commands operate on, its stack, and boto3 clients for where it runs."""

    stack: str
    region: str
    endpoint_url: str | None
    session: boto3.session.Session
    pipeline: str = ""
    resources: dict[str, str] = field(default_factory=dict)
    """role -> physical id (a topic's ARN, a queue's URL, a table's or a function's name)."""
    alarms: dict[str, str] = field(default_factory=dict)
    """alarm name -> logical id, for the pipeline's alarms."""
    event_type_index_shards: int = 0
    """Shards per event type of the by-type index (the recorder's setting); 0 without it."""
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str, *, config: Config | None = None) -> Any:
        """A client for the target; one per service unless a ``config`` is given."""
        if config is None and service in self._clients:
            return self._clients[service]
        base = Config(
            connect_timeout=5,
            read_timeout=30,
            # A local emulator answers at once or is not running: fail fast instead of retrying.
            retries={"mode": "standard", "total_max_attempts": 1 if self.endpoint_url else 3},
            # Loopback stays loopback whatever HTTP(S)_PROXY says.
            proxies={} if self.endpoint_url else None,
        )
        client = self.session.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=base.merge(config) if config else base,
        )
        if config is None:
            self._clients[service] = client
        return client

    @property
    def where(self) -> str:
        return f"{self.region}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    def resource(self, role: str) -> str:
        """The physical id of the pipeline's resource with this role (``discovery`` roles)."""
        if role not in self.resources:
            raise OperatorError(
                f"pipeline {self.pipeline!r} of stack {self.stack!r} has no deployed {role}"
            )
        return self.resources[role]


def resolve_target(arguments: argparse.Namespace) -> Target:
    """The pipeline named by --pipeline in the stack named by --stack: its template
    (GetTemplate) says which resources are its, ListStackResources their physical ids."""
    endpoint_url: str | None = LOCAL_ENDPOINT_URL if arguments.local else arguments.endpoint_url
    if endpoint_url is not None:
        # The emulator's region, not the one configured for real work.
        region = arguments.region or LOCAL_REGION
        credentials = {} if arguments.profile else _DUMMY_CREDENTIALS
        session = _session(profile_name=arguments.profile, region_name=region, **credentials)
    else:
        session = _session(profile_name=arguments.profile)
        # AWS_REGION as the AWS CLI v2 and most SDKs read it; botocore reads AWS_DEFAULT_REGION.
        region = arguments.region or os.environ.get("AWS_REGION") or session.region_name
        if not region:
            raise OperatorError(
                "no AWS region: pass --region, set AWS_REGION, or set a region in your profile"
            )
    target = Target(arguments.stack or DEFAULT_STACK, region, endpoint_url, session)
    cloudformation = target.client("cloudformation")
    if arguments.stack is None and endpoint_url is not None:
        # An emulator runs one stack: that one, whatever its name.
        stacks = cloudformation.describe_stacks().get("Stacks", [])
        if len(stacks) == 1:
            target.stack = stacks[0]["StackName"]
    try:
        body = cloudformation.get_template(StackName=target.stack)["TemplateBody"]
    except ClientError as error:
        if _error_code(error) == "ValidationError" and "does not exist" in str(error):
            hint = (
                "pick the --stack (and --region) that the emulator was started with"
                if endpoint_url
                else "deploy it or pick --stack / --region / --profile"
            )
            raise OperatorError(
                f"stack {target.stack!r} not found in {target.where}: {hint}"
            ) from None
        raise
    # boto3 parses a JSON template body; a YAML one stays text and holds no pipeline marks.
    template = body if isinstance(body, dict) else _json_or_empty(body)
    pipelines = find_pipelines(template)
    try:
        pipeline = select_pipeline(pipelines, arguments.pipeline, where=f"stack {target.stack!r}")
    except PipelineNotFoundError as error:
        # A --pipeline to give or to fix is a usage error; a stack without any is not.
        usage = arguments.pipeline is not None or len(pipelines) > 1
        raise OperatorError(str(error), EXIT_USAGE if usage else EXIT_ERROR) from None
    physical = {
        summary["LogicalResourceId"]: summary["PhysicalResourceId"]
        for page in cloudformation.get_paginator("list_stack_resources").paginate(
            StackName=target.stack
        )
        for summary in page["StackResourceSummaries"]
        if "PhysicalResourceId" in summary
    }
    target.pipeline = pipeline.path
    target.resources = {
        role: physical[logical_id]
        for role, logical_id in pipeline.roles.items()
        if logical_id in physical
    }
    target.alarms = {
        physical[logical_id]: logical_id for logical_id in pipeline.alarms if logical_id in physical
    }
    target.event_type_index_shards = _recorder_shards(template, pipeline)
    return target


def _recorder_shards(template: dict[str, Any], pipeline: discovery.PipelineResources) -> int:
    """The recorder's EVENT_TYPE_INDEX_SHARDS, as the template sets it (0: no by-type index)."""
    try:
        recorder = template["Resources"][pipeline.logical_id(discovery.RECORDER)]
        value = recorder["Properties"]["Environment"]["Variables"]["EVENT_TYPE_INDEX_SHARDS"]
        return int(value)
    except (KeyError, TypeError, ValueError):
        return 0


def _json_or_empty(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


@functools.cache
def _data_loader() -> botocore.loaders.Loader:
    return botocore.loaders.create_loader()


def _session(**options: Any) -> boto3.session.Session:
    """A boto3 session that parses AWS's service models once per process, not once per run of
    main() (tests and scripts may call it many times)."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _data_loader())
    return boto3.session.Session(botocore_session=core, **options)


# -- dates ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    """A --since/--until value: an instant, and whether it was given as a whole day."""

    value: datetime
    whole_day: bool


def iso_moment(text: str) -> Moment:
    """argparse type: an ISO 8601 date or date-time; naive means UTC."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return Moment(datetime(day.year, day.month, day.day, tzinfo=UTC), whole_day=True)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or date-time "
            "(e.g. 2026-11-29, 2026-11-29T10:00:00Z, 2026-11-29T11:00:00+01:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Moment(moment.astimezone(UTC), whole_day=False)


def _timestamp(moment: datetime) -> str:
    """The events' timestamp format (UTC, microseconds, "Z"): text order is time order."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _event_key_condition(
    since: Moment | None, until: Moment | None
) -> tuple[str, dict[str, dict[str, str]]]:
    """The sort key condition for a time range (both ends inclusive; a date means the day)."""
    lower, upper = _event_key_bounds(since, until)
    if lower and upper and lower > upper:
        raise UsageError("--since is after --until")
    return _key_range(lower, upper)


def _event_key_bounds(since: Moment | None, until: Moment | None) -> tuple[str | None, str | None]:
    lower = _timestamp(since.value) if since else None
    upper = None
    if until is not None:
        end = until.value + timedelta(days=1, microseconds=-1) if until.whole_day else until.value
        upper = _timestamp(end) + _KEY_UPPER_BOUND_SUFFIX
    return lower, upper


def _key_range(lower: str | None, upper: str | None) -> tuple[str, dict[str, dict[str, str]]]:
    if lower and upper:
        return " AND #sk BETWEEN :since AND :until", {
            ":since": {"S": lower},
            ":until": {"S": upper},
        }
    if lower:
        return " AND #sk >= :since", {":since": {"S": lower}}
    if upper:
        return " AND #sk <= :until", {":until": {"S": upper}}
    return "", {}


# -- commands ------------------------------------------------------------------------------------


def delete_account(target: Target, arguments: argparse.Namespace) -> int:
    """Invoke the publisher with the original solution's payload; print the event it published."""
    # Never retried: a retried invocation whose first attempt got through publishes twice.
    lambda_ = target.client(
        "lambda", config=Config(read_timeout=120, retries={"total_max_attempts": 1})
    )
    payload = {"email": arguments.email}
    if arguments.idempotency_key is not None:
        payload["idempotency_key"] = arguments.idempotency_key
    response = lambda_.invoke(
        FunctionName=target.resource(discovery.PUBLISHER),
        Payload=json.dumps(payload).encode(),
    )
    body = response["Payload"].read()
    result = json.loads(body) if body else None
    if response.get("FunctionError"):
        error = result if isinstance(result, dict) else {}
        error_type = str(error.get("errorType", response["FunctionError"]))
        message = str(error.get("errorMessage", body.decode(errors="replace")))
        if error_type == INVALID_PAYLOAD_ERROR:
            raise OperatorError(f"the publisher rejected the request: {message}", EXIT_USAGE)
        raise OperatorError(f"the publisher failed: {error_type}: {message}")
    if arguments.json:
        _print_json(result)
        return EXIT_OK
    published = result if isinstance(result, dict) else {"response": result}
    _print_pairs(published)
    # The address is not repeated: this output may end up in a ticket or a shared terminal.
    print(f"\nRecorded within seconds; see it with: {_again(arguments, 'trail')} EMAIL")
    return EXIT_OK


def trail(target: Target, arguments: argparse.Namespace) -> int:
    """One account's audit events, newest first.

    The account's records are under the address's pseudonym for each version of the pseudonym
    secret (rotation gives an account a new one), and under the address itself for records
    written in clear (version 1, or ``subject_in_clear``).
    """
    try:
        normalized = lambda_code.normalize_email(arguments.email.strip())
    except ValueError as error:
        raise UsageError(str(error)) from None
    secret_arn = target.resources.get(discovery.PSEUDONYM_SECRET)
    pseudonyms = (
        [
            lambda_code.pseudonymous_subject(normalized, secret)
            for secret in _secret_versions(target, secret_arn)
        ]
        if secret_arn
        else []
    )
    condition, values = _event_key_condition(arguments.since, arguments.until)
    names = {"#pk": PARTITION_KEY, **({"#sk": SORT_KEY} if condition else {})}
    requests = []
    for subject in [*pseudonyms, normalized]:
        request: dict[str, Any] = {
            "TableName": target.resource(discovery.TABLE),
            "KeyConditionExpression": "#pk = :pk" + condition,
            "ExpressionAttributeNames": dict(names),
            "ExpressionAttributeValues": {":pk": {"S": subject}, **values},
            "ScanIndexForward": False,
        }
        if arguments.type:
            request["FilterExpression"] = "#type = :type"
            request["ExpressionAttributeNames"]["#type"] = EVENT_TYPE_ATTRIBUTE
            request["ExpressionAttributeValues"][":type"] = {"S": arguments.type}
        requests.append(request)
    found, more = _query_merged(target.client("dynamodb"), requests, arguments.limit)
    columns = ("occurred_at", "event_type", "event_id", "source", "details")
    # The address is never printed when the stack keeps it out of its records.
    title = "for the given address" if secret_arn else f"for {normalized}"
    _print_events(arguments, found, more, columns, title)
    return EXIT_OK


def _secret_versions(target: Target, secret_arn: str) -> list[bytes]:
    """Every readable version of the pseudonym secret, current first."""
    secrets = target.client("secretsmanager")
    try:
        current = secrets.get_secret_value(SecretId=secret_arn)
    except ClientError as error:
        if _error_code(error) != "AccessDeniedException":
            raise
        raise OperatorError(
            "not allowed to read the pseudonym secret, which turns an address into its "
            f"subject ({secret_arn}): have your role granted with AuditPipeline.grant_lookup"
        ) from None
    values = [current["SecretString"].encode()]
    try:
        listed = secrets.list_secret_version_ids(SecretId=secret_arn, IncludeDeprecated=True)
    except ClientError as error:
        if _error_code(error) != "AccessDeniedException":
            raise
        return values  # the current version only: older records may be missed
    for version in listed.get("Versions", []):
        if version["VersionId"] == current["VersionId"]:
            continue
        try:
            older = secrets.get_secret_value(SecretId=secret_arn, VersionId=version["VersionId"])
        except ClientError as error:
            # A version removed meanwhile, or one this principal may not read: skip it.
            if _error_code(error) not in {"ResourceNotFoundException", "AccessDeniedException"}:
                raise
            continue
        values.append(older["SecretString"].encode())
    return values


def events(target: Target, arguments: argparse.Namespace) -> int:
    """Events of one type in a time range (the sharded by-type index), newest first.

    Each shard of the type is queried in parallel and the answers are merged by event key. A
    ``--cursor`` from an earlier answer continues below its last event.
    """
    shards = target.event_type_index_shards
    if not shards:
        raise OperatorError(
            f"stack {target.stack!r} has no by-type index (AuditPipeline event_type_index=False)"
            f": list an account's events with `{_again(arguments, 'trail')} EMAIL`"
        )
    before = _decode_cursor(arguments.cursor, arguments.type) if arguments.cursor else None
    lower, upper = _event_key_bounds(arguments.since, arguments.until)
    if before is not None:
        # Up to the cursor's key, which is then left out: keys are unique, so nothing repeats.
        upper = before if upper is None else min(upper, before)
    if lower and upper and lower > upper:
        _print_events(arguments, [], False, (), f"of type {arguments.type}")
        return EXIT_OK
    condition, values = _key_range(lower, upper)
    requests = [
        {
            "TableName": target.resource(discovery.TABLE),
            "IndexName": EVENT_TYPE_INDEX,
            "KeyConditionExpression": "#shard = :shard" + condition,
            "ExpressionAttributeNames": {
                "#shard": EVENT_TYPE_SHARD_ATTRIBUTE,
                **({"#sk": SORT_KEY} if condition else {}),
            },
            "ExpressionAttributeValues": {":shard": {"S": f"{arguments.type}#{shard}"}, **values},
            "ScanIndexForward": False,
            # Pages no bigger than what can be shown, instead of 1 MB from every shard.
            "Limit": arguments.limit + 2,
        }
        for shard in range(shards)
    ]
    filtered, more = _query_merged(
        target.client("dynamodb"), requests, arguments.limit, before=before
    )
    cursor = _encode_cursor(arguments.type, filtered[-1][SORT_KEY]) if more and filtered else None
    columns = ("occurred_at", "subject", "event_id", "source")
    _print_events(arguments, filtered, more, columns, f"of type {arguments.type}", cursor=cursor)
    return EXIT_OK


def seal(target: Target, arguments: argparse.Namespace) -> int:
    """Run the sealer now: sign the records written since the last digest into the chain."""
    lambda_ = target.client(
        "lambda", config=Config(read_timeout=180, retries={"total_max_attempts": 1})
    )
    response = lambda_.invoke(
        FunctionName=target.resource(discovery.SEALER),
        Payload=json.dumps({"trigger": "audit seal"}).encode(),
    )
    body = response["Payload"].read()
    result = json.loads(body) if body else {}
    if response.get("FunctionError"):
        error = result if isinstance(result, dict) else {}
        raise OperatorError(
            f"the sealer failed: {error.get('errorType', response['FunctionError'])}: "
            f"{error.get('errorMessage', body.decode(errors='replace'))}"
        )
    if arguments.json:
        _print_json(result)
        return EXIT_OK
    written = result.get("digests_written", [])
    print(
        f"Sealed {result.get('records_sealed', 0)} record(s) in "
        + (f"digest(s) {', '.join(map(str, written))}" if written else "no new digest")
        + f"; chain head is digest {result.get('chain_head', 0)}."
    )
    if result.get("notices_already_sealed"):
        print(f"{result['notices_already_sealed']} repeated report(s) were already sealed.")
    rejected = result.get("rejected", [])
    if rejected:
        print(f"\n{len(rejected)} record(s) failed their check before sealing:")
        print(
            _table(
                ("finding", "subject", "event_key"),
                [(r["finding"], r["subject"], r["event_key"]) for r in rejected],
            )
        )
    return EXIT_OK


def verify(target: Target, arguments: argparse.Namespace) -> int:
    """Check the digest chain, each digest's signature and each record against its digest."""
    from audit_stack import verify as checks  # cryptography only for this command

    if arguments.public_key:
        try:
            public_key = checks.load_public_key(arguments.public_key.read_bytes())
        except (OSError, ValueError) as error:
            raise UsageError(f"--public-key {arguments.public_key}: {error}") from None
    else:
        public_key = checks.kms_public_key(
            target.client("kms"), target.resource(discovery.SIGNING_KEY)
        )
    if arguments.export_public_key:
        arguments.export_public_key.write_bytes(checks.public_key_pem(public_key))
        print(f"Wrote the signing key's public key (PEM) to {arguments.export_public_key}")
        return EXIT_OK
    dynamodb = target.client("dynamodb")
    digests = checks.digest_items(dynamodb, target.resource(discovery.DIGEST_TABLE))
    report = checks.verify_log(
        checks.scan_records(dynamodb, target.resource(discovery.TABLE)),
        digests,
        public_key,
        since=arguments.since.value if arguments.since else None,
    )
    if arguments.json:
        _print_json(report.to_dict())
        return EXIT_OK if report.ok else EXIT_ERROR
    if not digests:
        print(
            "Nothing sealed yet: the chain has no digest"
            + (f"; {report.records} record(s) wait to be sealed" if report.records else "")
            + f". Seal with: {_again(arguments, 'seal')}"
        )
    else:
        print(
            f"Checked {report.digests} digest(s) (last sealed {report.last_sealed_at}) and "
            f"{report.records} record(s), {report.sealed_records} of them sealed."
        )
    if report.ok:
        print("OK: the chain is intact and every record matches its digest.")
        return EXIT_OK
    pending = [f for f in report.findings if f.kind == checks.PENDING]
    problems = [f for f in report.findings if f.kind != checks.PENDING]
    if problems:
        print(f"\nFAILED: {len(problems)} finding(s):")
        print(
            _table(
                ("finding", "detail", "subject", "event_key", "digest"),
                [
                    (
                        f.kind,
                        f.detail,
                        f.subject,
                        f.event_key,
                        "" if f.digest is None else str(f.digest),
                    )
                    for f in problems
                ],
            )
        )
    if pending:
        print(f"\n{len(pending)} record(s) are newer than the last seal (not yet sealed):")
        print(_table(("subject", "event_key"), [(f.subject, f.event_key) for f in pending]))
        print(f"Seal them with: {_again(arguments, 'seal')}")
    return EXIT_ERROR


def _encode_cursor(event_type: str, last_key: str) -> str:
    document = json.dumps({"type": event_type, "before": last_key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, event_type: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode()))
        before = document["before"]
        cursor_type = document["type"]
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise UsageError("--cursor: not a cursor printed by `audit events`") from None
    if cursor_type != event_type or not isinstance(before, str):
        raise UsageError(f"--cursor: it continues events of type {cursor_type!r}, not this one")
    return before


def dlq_show(target: Target, arguments: argparse.Namespace) -> int:
    """What is in the dead-letter queue and why the recorder rejects it; consumes nothing."""
    sqs = target.client("sqs")
    url = target.resource(discovery.DEAD_LETTER_QUEUE)
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "RedrivePolicy",
        ],
    )["Attributes"]
    if "RedrivePolicy" in attributes:
        # Each receive would count towards that policy's maxReceiveCount and could move messages.
        raise OperatorError(
            "the dead-letter queue has a RedrivePolicy of its own: reading it could move its "
            "messages on; not inspecting it"
        )
    visible = int(attributes["ApproximateNumberOfMessages"])
    in_flight = int(attributes["ApproximateNumberOfMessagesNotVisible"])
    messages = _peek(sqs, url, min(visible, arguments.limit)) if visible else []
    shown = [_describe_message(message) for message in messages]
    if arguments.json:
        _print_json(
            {
                "queue_url": url,
                "approximate_visible": visible,
                "approximate_in_flight": in_flight,
                "messages": shown,
            }
        )
        return EXIT_OK
    print(
        f"Dead-letter queue {_queue_name(url)}: {visible} message(s) visible, {in_flight} in flight"
    )
    if not shown:
        if in_flight:
            print("(messages in flight are being read or moved by someone else; look again soon)")
        return EXIT_OK
    print()
    rows = [
        [
            message["message_id"],
            message["sent_at"] or "",
            str(message["receive_count"]),
            message["event"] or "-",
            message["problem"],
        ]
        for message in shown
    ]
    print(_table(["MESSAGE ID", "SENT (UTC)", "RECEIVES", "EVENT", "WHY IT FAILED"], rows))
    if visible > len(shown):
        print(f"\n{visible - len(shown)} more not shown (--limit {arguments.limit}).")
    print(
        "\nNothing was consumed: the messages stay in the queue. RECEIVES counts this look too."
        f"\nFix the cause, then move them back to the queue: {_again(arguments, 'dlq', 'redrive')}"
    )
    return EXIT_OK


def dlq_redrive(target: Target, arguments: argparse.Namespace) -> int:
    """Move the dead-letter queue's messages back to the queue the recorder consumes."""
    sqs = target.client("sqs")
    dead_letter_url = target.resource(discovery.DEAD_LETTER_QUEUE)
    queue_url = target.resource(discovery.QUEUE)
    attributes = sqs.get_queue_attributes(
        QueueUrl=dead_letter_url, AttributeNames=["QueueArn", "ApproximateNumberOfMessages"]
    )["Attributes"]
    waiting = int(attributes["ApproximateNumberOfMessages"])
    if waiting == 0:
        result: dict[str, Any] = {"moved": 0, "status": "NOTHING_TO_MOVE"}
    elif arguments.max is None:
        result = _move_task(sqs, attributes["QueueArn"], arguments.timeout)
    else:
        result = _move_some(sqs, dead_letter_url, queue_url, arguments.max)
    result = {"source": dead_letter_url, "destination": queue_url, **result}
    if arguments.json:
        _print_json(result)
    elif waiting == 0:
        print("The dead-letter queue is empty: nothing to redrive.")
    else:
        print(
            f"Moved {result['moved']} message(s) from {_queue_name(dead_letter_url)} back to "
            f"{_queue_name(queue_url)} ({result['status']})."
        )
        print(f"The recorder picks them up now; watch with: {_again(arguments, 'status')}")
    if result["status"] not in {"COMPLETED", "NOTHING_TO_MOVE"}:
        reason = result.get("failure_reason") or "see ListMessageMoveTasks"
        raise OperatorError(f"message move task {result['status']}: {reason}")
    return EXIT_OK


def status(target: Target, arguments: argparse.Namespace) -> int:
    """Queue depths, age of the oldest message, alarm states; HEALTHY (0) or UNHEALTHY (3)."""
    sqs = target.client("sqs")
    queues = {
        "queue": target.resource(discovery.QUEUE),
        "dead_letter_queue": target.resource(discovery.DEAD_LETTER_QUEUE),
    }
    depths = {role: _depth(sqs, url) for role, url in queues.items()}
    ages = _oldest_message_ages(
        target.client("cloudwatch"), {role: _queue_name(url) for role, url in queues.items()}
    )
    alarms = _alarms(target)
    problems = []
    dead_letters = sum(depths["dead_letter_queue"].values())
    if dead_letters:
        problems.append(
            f"{dead_letters} message(s) in the dead-letter queue: see why with "
            f"`{_again(arguments, 'dlq', 'show')}`, fix the cause, then "
            f"`{_again(arguments, 'dlq', 'redrive')}`"
        )
    for alarm in alarms:
        if alarm["state"] == "ALARM":
            problems.append(f"alarm {alarm['logical_id']} is in ALARM: {alarm['reason']}")
    healthy = not problems
    note = (
        "the local emulator creates the stack's alarms but never evaluates them (it publishes no "
        "metrics): they stay INSUFFICIENT_DATA, health comes from the queues"
        if target.endpoint_url
        else None
    )
    report = {
        "stack": target.stack,
        "pipeline": target.pipeline,
        "region": target.region,
        "endpoint_url": target.endpoint_url,
        "status": "HEALTHY" if healthy else "UNHEALTHY",
        "problems": problems,
        "queues": {
            role: {
                "name": _queue_name(url),
                **depths[role],
                "oldest_message_age_seconds": ages.get(role),
            }
            for role, url in queues.items()
        },
        "alarms": alarms,
        "note": note,
    }
    if arguments.json:
        _print_json(report)
    else:
        _print_status(target, report)
    return EXIT_OK if healthy else EXIT_UNHEALTHY


# -- command helpers -----------------------------------------------------------------------------


def _query(dynamodb: Any, request: dict[str, Any], limit: int) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` items of a Query (all pages), and whether there are more."""
    deserializer = TypeDeserializer()
    items: list[dict[str, Any]] = []
    while True:
        page = dynamodb.query(**request)
        items += [
            {name: deserializer.deserialize(value) for name, value in item.items()}
            for item in page["Items"]
        ]
        if len(items) > limit:
            return items[:limit], True
        if "LastEvaluatedKey" not in page:
            return items, False
        request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def _query_merged(
    dynamodb: Any,
    requests: Sequence[dict[str, Any]],
    limit: int,
    *,
    before: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` items of several newest-first Queries (in parallel), merged newest first
    by event key, and whether there are more; items at or above ``before`` are left out."""
    with ThreadPoolExecutor(max_workers=min(_MAX_PARALLEL_QUERIES, len(requests))) as pool:
        # One more than shown when the cursor's own event may come back and be left out.
        most = limit + (1 if before is not None else 0)
        answers = list(pool.map(lambda request: _query(dynamodb, request, most), requests))
    merged = heapq.merge(
        *(items for items, _ in answers), key=lambda item: str(item[SORT_KEY]), reverse=True
    )
    wanted = [item for item in merged if before is None or str(item[SORT_KEY]) < before]
    more = len(wanted) > limit or any(more for _, more in answers)
    return wanted[:limit], more


def _peek(sqs: Any, url: str, limit: int) -> list[dict[str, Any]]:
    """Read up to ``limit`` messages without deleting any, and make them visible again.

    Receiving with VisibilityTimeout=0 cannot list more than one batch reliably (the same first
    messages come back every time), so each message is hidden while the rest are read, and all
    are released at the end, even after an error.
    """
    found: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    try:
        while len(found) < limit:
            batch = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, limit - len(found)),
                VisibilityTimeout=_PEEK_HOLD_SECONDS,
                # A long poll asks every SQS server, so no message is missed by sampling.
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                handles.append(message["ReceiptHandle"])
                found.setdefault(message["MessageId"], message)
    finally:
        _release(sqs, url, handles)
    return list(found.values())


def _release(sqs: Any, url: str, handles: list[str]) -> None:
    failed = 0
    for start in range(0, len(handles), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for index, handle in enumerate(handles[start : start + 10])
        ]
        failed += len(
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries).get("Failed", [])
        )
    if failed:
        print(
            f"warning: {failed} message(s) stay hidden for up to {_PEEK_HOLD_SECONDS} s "
            "(nothing is lost)",
            file=sys.stderr,
        )


def _describe_message(message: dict[str, Any]) -> dict[str, Any]:
    system = message.get("Attributes", {})
    sent = system.get("SentTimestamp")
    problem, event = diagnose(message["Body"])
    return {
        "message_id": message["MessageId"],
        "sent_at": _from_epoch_ms(sent) if sent else None,
        "receive_count": int(system.get("ApproximateReceiveCount", 0)),
        "event": event,
        "problem": problem,
        "body": message["Body"],
        "message_attributes": message.get("MessageAttributes", {}),
    }


def diagnose(body: str) -> tuple[str, str | None]:
    """Why the recorder would reject an SQS body, and the event it carries ("type id"), if any.

    A light check of the delivery format (README "Data model"), not the recorder's own parser:
    a body that passes it failed for another reason (the table, throttling, a timeout).
    """
    try:
        envelope = json.loads(body)
    except ValueError:
        return "not JSON", None
    if not isinstance(envelope, dict):
        return "not an SNS notification: the body is JSON but not an object", None
    if envelope.get("Type") != "Notification" or not isinstance(envelope.get("Message"), str):
        looks_like_event = {"event_id", "event_type"} <= set(envelope)
        hint = ": a bare event (sent straight to the queue, or raw delivery)" * looks_like_event
        return f"not an SNS notification{hint}", _event_label(envelope)
    try:
        event = json.loads(envelope["Message"])
    except ValueError:
        return "the SNS Message is not JSON", None
    if not isinstance(event, dict):
        return "the SNS Message is not a JSON object", None
    label = _event_label(event)
    missing = [name for name in _EVENT_FIELDS if name not in event]
    if missing:
        return f"event field {missing[0]}: is required", label
    if event["schema_version"] not in _SCHEMA_VERSIONS:
        return f"event field schema_version: {event['schema_version']!r} is not understood", label
    for name in _EVENT_FIELDS[1:]:
        if not isinstance(event[name], str) or not event[name]:
            return f"event field {name}: must be a non-empty string", label
    if not isinstance(event.get("details"), dict):
        return "event field details: must be a JSON object", label
    return (
        "looks valid (light check): the recorder failed for another reason; see its logs",
        label,
    )


def _event_label(document: dict[str, Any]) -> str | None:
    parts = [str(document[name]) for name in ("event_type", "event_id") if name in document]
    return " ".join(parts) or None


def _move_task(sqs: Any, dead_letter_arn: str, timeout: float) -> dict[str, Any]:
    """StartMessageMoveTask back to the source queue; wait for it and report what it moved."""
    try:
        handle = sqs.start_message_move_task(SourceArn=dead_letter_arn)["TaskHandle"]
    except ClientError as error:
        if "already a task running" in str(error).lower():
            raise OperatorError(
                "a redrive of this dead-letter queue is already running; wait for it"
            ) from None
        raise
    deadline = time.monotonic() + timeout
    delay = _REDRIVE_POLL_SECONDS[0]
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=dead_letter_arn, MaxResults=10)["Results"]
        # A running task shows its handle; a finished one does not, and it is then the newest.
        task = next((t for t in tasks if t.get("TaskHandle") == handle), None) or tasks[0]
        if task["Status"] not in {"RUNNING", "CANCELLING"}:
            break
        if time.monotonic() >= deadline:
            raise OperatorError(
                f"the redrive is still running after {timeout:.0f} s "
                f"({task.get('ApproximateNumberOfMessagesMoved', 0)} of "
                f"{task.get('ApproximateNumberOfMessagesToMove', '?')} moved); it goes on in "
                f"the background: aws sqs list-message-move-tasks --source-arn {dead_letter_arn}"
            )
        time.sleep(delay)
        delay = min(delay * 2, _REDRIVE_POLL_SECONDS[1])
    return {
        "moved": int(task.get("ApproximateNumberOfMessagesMoved", 0)),
        "to_move": int(task.get("ApproximateNumberOfMessagesToMove", 0)),
        "status": task["Status"],
        "failure_reason": task.get("FailureReason"),
        "method": "StartMessageMoveTask",
    }


def _move_some(sqs: Any, source_url: str, destination_url: str, most: int) -> dict[str, Any]:
    """Move at most ``most`` messages by hand (receive, send, delete), since a message move task
    has a rate but no count. A message is sent before it is deleted: if the CLI stops in
    between, it is in both queues, and the recorder skips the copy it has already recorded."""
    moved = 0
    while moved < most:
        batch = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=min(10, most - moved),
            VisibilityTimeout=_PEEK_HOLD_SECONDS,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            request: dict[str, Any] = {"QueueUrl": destination_url, "MessageBody": message["Body"]}
            attributes = {
                name: {key: value for key, value in attribute.items() if value not in ([], None)}
                for name, attribute in message.get("MessageAttributes", {}).items()
            }
            if attributes:
                request["MessageAttributes"] = attributes
            sqs.send_message(**request)
            sqs.delete_message(QueueUrl=source_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return {"moved": moved, "status": "COMPLETED", "method": f"receive/send/delete, --max {most}"}


def _depth(sqs: Any, url: str) -> dict[str, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {
        "visible": int(attributes["ApproximateNumberOfMessages"]),
        "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
    }


def _oldest_message_ages(cloudwatch: Any, names: dict[str, str]) -> dict[str, float]:
    """ApproximateAgeOfOldestMessage, newest datapoint of the last 15 minutes, per queue role.

    SQS's API has no such attribute: CloudWatch is the only source, a minute or more behind.
    """
    now = datetime.now(UTC)
    roles = list(names)
    response = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": f"q{index}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateAgeOfOldestMessage",
                        "Dimensions": [{"Name": "QueueName", "Value": names[role]}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
            for index, role in enumerate(roles)
        ],
        StartTime=now - timedelta(minutes=15),
        EndTime=now,
        ScanBy="TimestampDescending",
    )
    ages: dict[str, float] = {}
    for result in response["MetricDataResults"]:
        if result.get("Values"):
            ages[roles[int(result["Id"][1:])]] = float(result["Values"][0])
    return ages


def _alarms(target: Target) -> list[dict[str, Any]]:
    """The pipeline's CloudWatch alarms and their states."""
    names = target.alarms
    cloudwatch = target.client("cloudwatch")
    found: list[dict[str, Any]] = []
    ordered = sorted(names)
    for start in range(0, len(ordered), 100):
        response = cloudwatch.describe_alarms(
            AlarmNames=ordered[start : start + 100], AlarmTypes=["MetricAlarm"]
        )
        for alarm in response["MetricAlarms"]:
            found.append(
                {
                    "logical_id": names[alarm["AlarmName"]],
                    "name": alarm["AlarmName"],
                    "state": alarm["StateValue"],
                    "since": _iso(alarm["StateUpdatedTimestamp"]),
                    "reason": alarm.get("StateReason", ""),
                    "condition": _alarm_condition(alarm),
                }
            )
    return sorted(found, key=lambda alarm: alarm["logical_id"])


def _alarm_condition(alarm: dict[str, Any]) -> str:
    operators = {
        "GreaterThanOrEqualToThreshold": ">=",
        "GreaterThanThreshold": ">",
        "LessThanThreshold": "<",
        "LessThanOrEqualToThreshold": "<=",
    }
    operator = operators.get(alarm.get("ComparisonOperator", ""), "?")
    threshold = alarm.get("Threshold")
    shown = f"{threshold:g}" if isinstance(threshold, float) else str(threshold)
    return f"{alarm.get('MetricName', 'metric math')} {operator} {shown}"


# -- output --------------------------------------------------------------------------------------


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, default=_json_default, ensure_ascii=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, datetime):
        return _iso(value)
    return str(value)


def _print_pairs(pairs: dict[str, Any]) -> None:
    width = max(map(len, pairs), default=0)
    for key, value in pairs.items():
        print(f"{key.ljust(width)}  {_cell(value)}")


def _print_events(
    arguments: argparse.Namespace,
    found: list[dict[str, Any]],
    more: bool,
    columns: Sequence[str],
    title: str,
    *,
    cursor: str | None = None,
) -> None:
    if arguments.json:
        _print_json({"events": found, "more": more, **({"cursor": cursor} if cursor else {})})
        return
    period = _period(arguments.since, arguments.until)
    if not found:
        print(f"No events {title}{period}.")
        return
    print(f"{len(found)} event(s) {title}{period}, newest first:\n")
    rows = [[_cell(_shown(event, column)) for column in columns] for event in found]
    print(_table([column.upper().replace("_", " ") for column in columns], rows))
    if more and cursor:
        print(
            f"\nMore events match: continue with --cursor {cursor} (same --type/--since/--until)."
        )
    elif more:
        print(f"\nMore events match: narrow --since/--until or raise --limit ({arguments.limit}).")


def _shown(event: dict[str, Any], column: str) -> Any:
    if (
        column == "details"
        and not event.get("details")
        and event.get("subject_type") == SUBJECT_TYPE_PSEUDONYM
    ):
        return DETAILS_NOT_STORED
    return event.get(column, "")


def _period(since: Moment | None, until: Moment | None) -> str:
    def shown(moment: Moment) -> str:
        return moment.value.date().isoformat() if moment.whole_day else _iso(moment.value)

    return (f" since {shown(since)}" if since else "") + (f" until {shown(until)}" if until else "")


def _print_status(target: Target, report: dict[str, Any]) -> None:
    print(f"Stack {target.stack}, pipeline {target.pipeline}, in {target.where}\n")
    rows = []
    for role, queue in report["queues"].items():
        age = queue["oldest_message_age_seconds"]
        rows.append(
            [
                role.replace("_", " "),
                str(queue["visible"]),
                str(queue["in_flight"]),
                str(queue["delayed"]),
                _duration(age) if age is not None else "no data",
                queue["name"],
            ]
        )
    print(_table(["QUEUE", "VISIBLE", "IN FLIGHT", "DELAYED", "OLDEST MESSAGE", "NAME"], rows))
    print()
    if report["alarms"]:
        alarm_rows = [
            [alarm["logical_id"], alarm["state"], alarm["since"], alarm["condition"]]
            for alarm in report["alarms"]
        ]
        print(_table(["ALARM", "STATE", "SINCE (UTC)", "CONDITION"], alarm_rows))
    else:
        print("No CloudWatch alarms in the stack.")
    if report["note"]:
        print(f"\nnote: {report['note']}.")
    print(f"\n{report['status']}")
    for problem in report["problems"]:
        print(f"  - {problem}")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[index]) for row in [headers, *rows]) for index in range(len(headers))]
    numeric = [
        bool(rows) and all(row[index].isdigit() for row in rows) for index in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def _cell(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=_json_default, sort_keys=True, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86_400} d"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _from_epoch_ms(value: str) -> str:
    return _iso(datetime.fromtimestamp(int(value) / 1000, UTC))


def _again(arguments: argparse.Namespace, *command: str) -> str:
    """An ``audit`` command line for the same target as this run, for hints."""
    words = ["audit"]
    if arguments.local:
        words.append("--local")
    elif arguments.endpoint_url:
        words += ["--endpoint-url", arguments.endpoint_url]
    for option in ("stack", "pipeline", "profile", "region"):
        value = getattr(arguments, option)
        if value:
            words += [f"--{option}", value]
    return shlex.join([*words, *command])


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# -- command line --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Usage errors become one line and exit code 2, through main()."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _target_options(*, for_subcommand: bool) -> argparse.ArgumentParser:
    """Options accepted before and after the command (``audit --local status`` and
    ``audit status --local``); after it, only what is given overrides what came before."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if for_subcommand else value

    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("target")
    group.add_argument(
        "--stack",
        default=default(None),
        metavar="NAME",
        help=f"CloudFormation stack holding the pipeline (default {DEFAULT_STACK}; on an "
        "emulator, the stack it runs)",
    )
    group.add_argument(
        "--pipeline",
        default=default(None),
        metavar="ID",
        help="the AuditPipeline's construct id or path in the stack (default: the only one)",
    )
    group.add_argument("--profile", default=default(None), help="AWS profile (credential chain)")
    group.add_argument(
        "--region",
        default=default(None),
        help=f"AWS region (default: your configuration; {LOCAL_REGION} for an emulator)",
    )
    # Not an argparse mutually exclusive group: those lose their argument group in a parent parser.
    group.add_argument(
        "--endpoint-url",
        default=default(None),
        metavar="URL",
        help="a running local emulator (python -m audit_stack.local up --port N)",
    )
    group.add_argument(
        "--local",
        action="store_true",
        default=default(False),
        help=f"the local emulator at {LOCAL_ENDPOINT_URL} (python -m audit_stack.local up)",
    )
    options.add_argument_group("output").add_argument(
        "--json", action="store_true", default=default(False), help="JSON output for scripts"
    )
    return options


Command = Callable[[Target, argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    common = _target_options(for_subcommand=True)
    parser = _Parser(
        prog="audit",
        description="Operate the audit pipeline: a deployed stack, or the local emulator.",
        epilog=(
            "exit codes: 0 done / HEALTHY, 1 operational error (credentials, stack not found, "
            "endpoint unreachable, AWS error), 2 usage error, 3 UNHEALTHY"
        ),
        parents=[_target_options(for_subcommand=False)],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group: Any, name: str, handler: Command, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(
            name, help=help_text, description=help_text, parents=[common]
        )
        sub.set_defaults(handler=handler)
        return sub

    delete = command(
        commands,
        "delete-account",
        delete_account,
        'invoke the publisher with {"email": EMAIL}; print the published event',
    )
    delete.add_argument("email", metavar="EMAIL")
    delete.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="the caller's request id (1-128 printable ASCII): retries with it are recorded once",
    )

    trail_parser = command(commands, "trail", trail, "an account's audit events, newest first")
    trail_parser.add_argument("email", metavar="EMAIL", help="the account (case-insensitive)")
    trail_parser.add_argument("--type", help="only events of this type, e.g. AccountDeleted")
    events_parser = command(
        commands, "events", events, "events of one type in a time range, newest first"
    )
    events_parser.add_argument("--type", required=True, help="event type, e.g. AccountDeleted")
    events_parser.add_argument(
        "--cursor", help="continue after the last event of an earlier answer (it prints one)"
    )
    for query in (trail_parser, events_parser):
        query.add_argument(
            "--since",
            type=iso_moment,
            metavar="WHEN",
            help="from this ISO 8601 date or date-time (inclusive; naive = UTC)",
        )
        query.add_argument(
            "--until",
            type=iso_moment,
            metavar="WHEN",
            help="up to this date (the whole day) or date-time (inclusive; naive = UTC)",
        )
        query.add_argument(
            "--limit", type=_positive_int, default=100, help="most events shown (default 100)"
        )

    dlq = commands.add_parser(
        "dlq", help="the dead-letter queue: show, redrive", description="The dead-letter queue."
    )
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    show = command(
        dlq_commands, "show", dlq_show, "what is in the dead-letter queue and why; consumes nothing"
    )
    show.add_argument(
        "--limit", type=_positive_int, default=100, help="most messages shown (default 100)"
    )
    redrive = command(
        dlq_commands,
        "redrive",
        dlq_redrive,
        "move the dead-letter queue's messages back to the queue (after the fix)",
    )
    redrive.add_argument(
        "--max",
        type=_positive_int,
        metavar="N",
        help="move at most N messages (by receive/send/delete: a message move task has no count)",
    )
    redrive.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for the message move task (default 600)",
    )
    command(
        commands,
        "status",
        status,
        "queue depths, age of the oldest message, alarm states; exit code 3 when UNHEALTHY",
    )
    command(commands, "seal", seal, "run the sealer now: sign new records into the digest chain")
    verify_parser = command(
        commands,
        "verify",
        verify,
        "check the digest chain, its signatures and every record; exit code 1 on any finding",
    )
    verify_parser.add_argument(
        "--since",
        type=iso_moment,
        metavar="WHEN",
        help="check only digests sealed and records written from this date or date-time",
    )
    verify_parser.add_argument(
        "--public-key",
        type=Path,
        metavar="FILE",
        help="verify with this PEM public key (offline) instead of kms:GetPublicKey",
    )
    verify_parser.add_argument(
        "--export-public-key",
        type=Path,
        metavar="FILE",
        help="write the signing key's public key (PEM) to FILE and stop",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
        _check_usage(arguments)
        handler: Command = arguments.handler
        return handler(resolve_target(arguments), arguments)
    except SystemExit as exit_:
        # --help and --version print and exit; any other code stays as argparse meant it.
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    except UsageError as error:
        return _fail(str(error), EXIT_USAGE)
    except OperatorError as error:
        return _fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`audit ... | head`): stop quietly, and let nothing else write to
        # the closed pipe at interpreter exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except (NoCredentialsError, PartialCredentialsError):
        return _fail(
            "no AWS credentials found: configure them (aws configure / aws sso login), pass "
            "--profile, or use --local / --endpoint-url for the emulator"
        )
    except ProfileNotFound as error:
        return _fail(f"{error}: check --profile / AWS_PROFILE against aws configure list-profiles")
    except NoRegionError:
        return _fail("no AWS region: pass --region or set AWS_REGION")
    except (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError) as error:
        endpoint = getattr(error, "kwargs", {}).get("endpoint_url", "the endpoint")
        hint = " (is `python -m audit_stack.local up` running?)" if _is_loopback(endpoint) else ""
        return _fail(f"cannot reach {endpoint}{hint}")
    except ReadTimeoutError as error:
        return _fail(f"no answer in time: {error}")
    except ClientError as error:
        operation = getattr(error, "operation_name", "request")
        message = error.response.get("Error", {}).get("Message", str(error))
        return _fail(f"{operation} failed: {_error_code(error)}: {message}")
    except BotoCoreError as error:
        return _fail(str(error))


def _check_usage(arguments: argparse.Namespace) -> None:
    """What argparse cannot check alone, before anything goes over the network."""
    if arguments.local and arguments.endpoint_url:
        raise UsageError("--local and --endpoint-url exclude each other")
    if arguments.endpoint_url is not None:
        parts = urlsplit(arguments.endpoint_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise UsageError(f"--endpoint-url: {arguments.endpoint_url!r} is not an http(s) URL")
    if getattr(arguments, "email", None) is not None and not arguments.email.strip():
        raise UsageError("EMAIL must not be empty")
    # Raises for --since after --until.
    _event_key_condition(getattr(arguments, "since", None), getattr(arguments, "until", None))


def _fail(message: str, exit_code: int = EXIT_ERROR) -> int:
    print(f"audit: error: {message}", file=sys.stderr)
    return exit_code


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in {"localhost", "::1"} or host.startswith("127.")


if __name__ == "__main__":
    sys.exit(main())
