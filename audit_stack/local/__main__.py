"""Command line of the embedded emulator: ``demo`` (the README's main command) and ``up``.

``python -m audit_stack.local demo [--assembly cdk.out] [--stack S] [--pipeline P] [--verbose]``
``python -m audit_stack.local up [--assembly cdk.out] [--stack S] [--pipeline P] [--port N]``

Exit codes: 0 done (``up``: stopped by Ctrl-C or SIGTERM), 1 the stack could not be deployed or
the demo failed, 2 the port cannot be used (or bad arguments).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any, TextIO

from boto3.dynamodb.types import TypeDeserializer

from audit_stack import discovery
from audit_stack.cli import render
from audit_stack.discovery import PipelineNotFoundError
from audit_stack.endpoints import LOCAL_ENDPOINT_URL, LOCAL_PORT, LOCAL_REGION
from audit_stack.lambda_code import audit_events_module, contract
from audit_stack.local.access.identities import Caller
from audit_stack.local.access.requests import Target
from audit_stack.local.deploy.report import resource_counts
from audit_stack.local.deploy.template import DeploymentError
from audit_stack.local.http.server import PortUnavailableError
from audit_stack.local.pipeline import FunctionInvocationError, LocalAuditPipeline
from audit_stack.publisher import AuditPublisher, EventCatalogue

__all__ = ["demo", "main", "stop_signals", "up", "usage"]

# The original solution's test payload.
DEMO_EMAIL = "john.doe@mail.com"
# Whom the demo's event is about on a pipeline without AccountDeleted (any identifier will do).
DEMO_SUBJECT = "cus_demo_1042"
DEMO_SOURCE = "demo"
# The trail is one event per column: a cell may be wider than the CLI's, so a key shows whole.
_TRAIL_CELL = 72


class _Steps:
    """Numbered progress lines, each with how long its step took."""

    def __init__(self, total: int, out: TextIO, *, verbose: bool) -> None:
        self._total = total
        self._number = 0
        self._out = out
        self._verbose = verbose

    @contextmanager
    def step(self, title: str) -> Iterator[Callable[[str], None]]:
        self._number += 1
        # Verbose logs come between a step's title and its outcome: the outcome gets its own line.
        ending = "\n" if self._verbose else " "
        self._out.write(f"[{self._number}/{self._total}] {title} ...{ending}")
        self._out.flush()
        outcome = ["done"]
        started = time.monotonic()
        try:
            yield lambda text: outcome.__setitem__(0, text)
        except BaseException:
            outcome[0] = "failed"
            raise
        finally:
            prefix = "      -> " if self._verbose else ""
            elapsed = time.monotonic() - started
            self._out.write(f"{prefix}{outcome[0]} ({elapsed:.2f} s)\n")
            self._out.flush()


def demo(
    assembly: str,
    stack: str | None,
    pipeline_id: str | None,
    verbose: bool,
    out: TextIO,
    *,
    principal: str | None = None,
    enforce_iam: bool = True,
) -> int:
    """Publish the original payload (on a pipeline without AccountDeleted: an event of its first
    type that needs no details), let the recorder record it, print the audit trail, let the
    table's stream bring it to the sealer (sealing it into the digest chain), and verify the
    log."""
    started = time.monotonic()
    out.write(
        "Audit pipeline demo: the synthesized stack on an embedded AWS emulator "
        "(no AWS account, no Docker)\n\n"
    )
    steps = _Steps(7, out, verbose=verbose)
    with steps.step(f"Read the cloud assembly {assembly}") as result:
        pipeline = LocalAuditPipeline(
            assembly,
            stack,
            pipeline=pipeline_id,
            verbose=verbose,
            output=out,
            principal=principal,
            enforce_iam=enforce_iam,
        )
        resources = pipeline.template.get("Resources", {})
        result(
            f"stack {pipeline.stack_name}, pipeline {pipeline.pipeline}: {len(resources)} resources"
        )
    with steps.step("Start the emulator on loopback and deploy the stack") as result:
        pipeline.start()
        stacks = pipeline.deployment.stacks
        result(
            f"{pipeline.endpoint_url}: {resource_counts(stacks)}"
            + (f", in stacks {', '.join(pipeline.stacks)}" if len(stacks) > 1 else "")
            + f"; {iam_mode(pipeline)}"
        )
    try:
        if discovery.PUBLISHER in pipeline.function_roles:
            demo_subject = DEMO_EMAIL
            payload = {"email": DEMO_EMAIL}
            with steps.step(f"Invoke the publisher with {json.dumps(payload)}") as result:
                response = pipeline.invoke("publisher", payload)
                result(f"published {json.dumps(response)}")
        else:
            demo_subject = DEMO_SUBJECT
            catalogue = _catalogue(pipeline)
            event_type = _event_type_without_details(catalogue)
            title = f"Publish an event of type {event_type} about {DEMO_SUBJECT} (AuditPublisher)"
            with steps.step(title) as result:
                published = _publisher(pipeline, catalogue).publish_event(
                    event_type, subject=DEMO_SUBJECT
                )
                result(f"published {json.dumps(dataclasses.asdict(published))}")
        table = pipeline.table_name
        ddb = pipeline.client("dynamodb")
        partition_key, sort_key = _key_names(ddb, table)
        subject = pipeline.subject_of(demo_subject)

        def query() -> list[dict[str, Any]]:
            """The subject's records, newest first, as Python values."""
            items = ddb.query(
                TableName=table,
                KeyConditionExpression="#pk = :pk",
                ExpressionAttributeNames={"#pk": partition_key},
                ExpressionAttributeValues={":pk": {"S": subject}},
                ScanIndexForward=False,
            )["Items"]
            deserializer = TypeDeserializer()
            return [
                {name: deserializer.deserialize(value) for name, value in item.items()}
                for item in items
            ]

        with steps.step("Let the recorder consume the queue until the event is recorded") as result:
            pipeline.run_until_idle(timeout=30)
            recorded = query()
            if not recorded:
                raise RuntimeError(
                    f"no record for {demo_subject} in {table} after the queue drained"
                )
            result(f"{len(recorded)} record(s) for {demo_subject}")
        with steps.step(f"Query the audit trail of {demo_subject}, newest first") as result:
            items = query()
            result(f"{len(items)} event(s)")
        named = (
            f"{demo_subject}, subject = its HMAC-SHA-256 pseudonym"
            if subject.lower() != demo_subject.lower()
            else demo_subject
        )
        out.write(f"\nAudit trail of {named} (table {table}, key {partition_key}/{sort_key}):\n")
        out.write(_trail_table(items, first=[partition_key, sort_key]) + "\n\n")
        with steps.step("Seal: the table's stream brings the new records to the sealer") as result:
            pipeline.run_until_idle(timeout=60)  # the batching window, fast-forwarded
            batches = [
                found.event["Records"]
                for found in pipeline.invocations("sealer")
                if isinstance(found.event, dict) and found.event.get("Records")
            ]
            result(
                f"{sum(len(batch) for batch in batches)} record(s) in {len(batches)} stream "
                "batch(es) signed into the digest chain"
            )
        with steps.step("Verify signatures, chain and every record (audit verify)") as result:
            from audit_stack import verify  # cryptography: loaded only here

            report = verify.verify_log(
                verify.scan_records(ddb, table),
                verify.digest_items(
                    ddb, pipeline.resource_name(discovery.DIGEST_TABLE), pipeline.client("s3")
                ),
                verify.kms_public_key(
                    pipeline.client("kms"), pipeline.resource_name(discovery.SIGNING_KEY)
                ),
            )
            if not report.ok:
                raise RuntimeError(f"verification failed: {report.to_dict()['findings']}")
            result(f"OK: {report.digests} digest(s), {report.sealed_records} record(s) sealed")
        out.write("\n")
    finally:
        stopping = time.monotonic()
        pipeline.stop()
        out.write(f"Stopped the emulator ({time.monotonic() - stopping:.2f} s). ")
        out.write(f"Total {time.monotonic() - started:.2f} s.\n")
    return 0


def _catalogue(pipeline: LocalAuditPipeline) -> EventCatalogue | None:
    """The selected pipeline's catalogue, as its recorder's environment holds it."""
    selected = discovery.select_pipeline(
        discovery.find_pipelines(pipeline.template), pipeline.pipeline, where=pipeline.stack_name
    )
    recorder = discovery.function_environment(pipeline.template, selected, discovery.RECORDER)
    text = recorder.get(contract.ENV_EVENT_CATALOGUE)
    return audit_events_module("catalogue").parse_catalogue(text) if text else None


def _event_type_without_details(catalogue: EventCatalogue | None) -> str:
    """The catalogue's first type whose schema takes empty details (the demo has none to give)."""
    for event_type in catalogue.event_types if catalogue is not None else ():
        if _takes_empty_details(catalogue, event_type):
            return str(event_type)
    raise RuntimeError(
        "every event type of this pipeline needs details the demo cannot invent: publish one "
        "with `audit --local publish TYPE --subject ... --details JSON`"
    )


def _publisher(pipeline: LocalAuditPipeline, catalogue: EventCatalogue | None) -> AuditPublisher:
    """A producer's client for the selected pipeline, as an application would hold it."""
    try:
        secret_arn: str | None = pipeline.resource_name(discovery.PSEUDONYM_SECRET)
    except KeyError:  # subject_in_clear
        secret_arn = None
    return AuditPublisher(
        pipeline.topic_arn,
        pseudonym_secret_arn=secret_arn,
        subject_in_clear=secret_arn is None,
        event_types=catalogue,
        source=DEMO_SOURCE,
        # The demo plays an application granted grant_publish and grant_lookup; the outside
        # principal (an administrator) is denied both by the topic's and the secret's policies.
        sns_client=pipeline.client("sns", as_emulator=True),
        secrets_client=pipeline.client("secretsmanager", as_emulator=True),
    )


def iam_mode(pipeline: LocalAuditPipeline) -> str:
    """Which IAM mode the emulator runs in, in one phrase."""
    if pipeline.enforce_iam:
        return f"IAM enforced, outside callers are {pipeline.principal}"
    return "IAM NOT enforced (--no-enforce-iam): every request is allowed"


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_signals() -> Iterator[Callable[[], int]]:
    """While open, SIGINT and SIGTERM request a stop; yields a wait that returns the first
    signal's number (at once if one came before the wait began, e.g. during the deployment).

    Why not a Python handler that sets a ``threading.Event``: CPython's C handler only marks
    the signal, and its Python handler runs when the main thread next passes through the
    interpreter. A signal that lands just before the main thread blocks in ``Event.wait()``,
    or on another thread, never wakes that wait: `up` then ignored Ctrl-C (2 of 100 runs).
    The wakeup descriptor is written by the C handler itself, so the wait reads a signal that
    came at any moment. Must be opened in the main thread (``signal``'s rule).
    """
    reader, writer = socket.socketpair()
    writer.setblocking(False)  # set_wakeup_fd's requirement: a full buffer never blocks a handler
    previous_handlers: dict[int, Any] = {}
    previous_fd: int | None = None
    try:
        for signum in _STOP_SIGNALS:
            # The handler itself does nothing: the byte in the wakeup socket is the request.
            previous_handlers[signum] = signal.signal(signum, _note_signal)
        previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

        def wait_for_stop() -> int:
            while True:
                data = reader.recv(1)
                if data and data[0] in _STOP_SIGNALS:
                    return data[0]

        yield wait_for_stop
    finally:
        if previous_fd is not None:
            signal.set_wakeup_fd(previous_fd)
        for number, handler in previous_handlers.items():
            signal.signal(number, handler)
        reader.close()
        writer.close()


def _note_signal(signum: int, frame: FrameType | None) -> None:
    """Python's part of a stop signal: none (stop_signals' wakeup socket carries it)."""


def up(
    assembly: str,
    stack: str | None,
    pipeline_id: str | None,
    port: int,
    verbose: bool,
    out: TextIO,
    *,
    principal: str | None = None,
    enforce_iam: bool = True,
) -> int:
    """Run the emulator and its pollers in the foreground until Ctrl-C or SIGTERM."""
    with (
        stop_signals() as wait_for_stop,
        LocalAuditPipeline(
            assembly,
            stack,
            pipeline=pipeline_id,
            verbose=verbose,
            port=port,
            output=out,
            principal=principal,
            enforce_iam=enforce_iam,
        ) as pipeline,
    ):
        out.write(f"{iam_mode(pipeline)}\n")
        out.write(usage(pipeline) + "\n")
        out.flush()
        wait_for_stop()
        out.write("\nStopping the emulator ...\n")
        out.flush()
    out.write("Stopped.\n")
    return 0


def usage(pipeline: LocalAuditPipeline) -> str:
    """The endpoint, the pipeline's resources, and commands to try against them."""
    resources = {
        "topic": pipeline.topic_arn,
        "queue": pipeline.queue_url,
        "dead-letter queue": pipeline.dead_letter_queue_url,
        "table": pipeline.table_name,
        **{f"{role} function": pipeline.function_name(role) for role in pipeline.function_roles},
    }
    width = max(map(len, resources))
    others = [path for path in pipeline.pipelines if path != pipeline.pipeline]
    lines = [
        f"Audit pipeline emulator running on {pipeline.endpoint_url} "
        f"(region {pipeline.region}); Ctrl-C stops it.",
        "",
        f"Stack {pipeline.stack_name}, pipeline {pipeline.pipeline}"
        + (f" (also in the stack: {', '.join(others)})" if others else "")
        + (
            f"; deployed after {', '.join(pipeline.stacks[:-1])}"
            if len(pipeline.stacks) > 1
            else ""
        )
        + ":",
        *(f"  {key.ljust(width)}  {value}" for key, value in resources.items()),
        "",
        "Try it with the AWS CLI (v2) in another terminal:",
        f"  export AWS_ENDPOINT_URL={pipeline.endpoint_url} AWS_REGION={pipeline.region} "
        "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing",
    ]
    has_publisher = discovery.PUBLISHER in pipeline.function_roles
    demo_subject = DEMO_EMAIL if has_publisher else DEMO_SUBJECT
    publisher = pipeline.function_name("publisher") if has_publisher else ""
    payload = json.dumps({"email": DEMO_EMAIL})
    if has_publisher:
        lines.append(
            f"  aws lambda invoke --function-name {publisher} --cli-binary-format "
            f"raw-in-base64-out --payload {shlex.quote(payload)} /dev/stdout"
        )
    table = pipeline.table_name
    # The emulator describes its own resources: the `--as` principal (an operator granted
    # grant_read, say) need not be allowed DescribeTable or GetQueueAttributes.
    if table:
        partition_key, _ = _key_names(pipeline.client("dynamodb", as_emulator=True), table)
        values = json.dumps({":pk": {"S": pipeline.subject_of(demo_subject)}})
        lines.append(
            f"  aws dynamodb query --table-name {table} --key-condition-expression "
            f"{shlex.quote(f'{partition_key} = :pk')} --expression-attribute-values "
            f"{shlex.quote(values)} --no-scan-index-forward"
        )
    dead_letter_url = pipeline.dead_letter_queue_url
    if dead_letter_url:
        arn = pipeline.client("sqs", as_emulator=True).get_queue_attributes(
            QueueUrl=dead_letter_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        lines.append(
            f"  aws sqs get-queue-attributes --queue-url {dead_letter_url} "
            "--attribute-names ApproximateNumberOfMessages"
        )
        lines.append(f"  aws sqs start-message-move-task --source-arn {arn}")
    # `audit --local` means this endpoint in this region; anything else is spelled out. The CLI
    # finds the stack and the pipeline selected here by asking the emulator.
    target = (
        "--local"
        if (pipeline.endpoint_url, pipeline.region) == (LOCAL_ENDPOINT_URL, LOCAL_REGION)
        else f"--endpoint-url {pipeline.endpoint_url} --region {pipeline.region}"
    )
    catalogue = _catalogue(pipeline)
    first_type = catalogue.event_types[0] if catalogue is not None else "TYPE"
    details = "" if _takes_empty_details(catalogue, first_type) else " --details JSON"
    # AccountDeleted is about an address; other types about any identifier.
    subject = DEMO_EMAIL if first_type == contract.ACCOUNT_DELETED else DEMO_SUBJECT
    commands = {
        **({"delete-account": f"delete-account {DEMO_EMAIL}"} if has_publisher else {}),
        "publish": f"publish {first_type} --subject {subject}{details}",
        "trail": f"trail {demo_subject}",
        "events": f"events --type {first_type}",
        "status": "status",
        "dlq": "dlq show",
    }
    denied = denied_commands(pipeline)
    lines += [
        "",
        "Or with the operator CLI (audit --help):",
        *(f"  audit {target} {line}" for name, line in commands.items() if name not in denied),
    ]
    if denied:
        lines += [
            f"  Denied to {pipeline.principal}, as AWS would deny it (to try them, restart with",
            "  --as ROLE_ARN, a role of your app granted grant_read and grant_publish, or with",
            "  --no-enforce-iam):",
        ]
        for name, why in denied.items():
            lines += [f"    audit {target} {commands[name]}", f"      denied {why}"]
    if has_publisher:
        lines += [
            "",
            "Or with boto3:",
            f'  lambda_ = boto3.client("lambda", endpoint_url="{pipeline.endpoint_url}", '
            f'region_name="{pipeline.region}", aws_access_key_id="testing", '
            'aws_secret_access_key="testing")',
            f'  lambda_.invoke(FunctionName="{publisher}", Payload={payload!r})["Payload"].read()',
        ]
    return "\n".join(lines)


def _takes_empty_details(catalogue: EventCatalogue | None, event_type: str) -> bool:
    if catalogue is None:
        return True
    try:
        catalogue.check(event_type, {})
    except audit_events_module("catalogue").EventRuleError:
        return False
    return True


def denied_commands(pipeline: LocalAuditPipeline) -> dict[str, str]:
    """The suggested CLI commands that IAM denies the emulator's outside caller, each with the
    first action it is denied (none when IAM is not enforced)."""
    if not pipeline.enforce_iam:
        return {}
    caller = Caller(pipeline.principal)
    try:
        secret: str | None = pipeline.resource_name(discovery.PSEUDONYM_SECRET)
    except KeyError:  # subject_in_clear: no key to read
        secret = None
    read_key = [Target("secretsmanager:GetSecretValue", secret)] if secret else []
    needs = {
        "publish": [*read_key, Target("sns:Publish", pipeline.topic_arn)],
        "trail": read_key,
    }
    denied: dict[str, str] = {}
    for command, targets in needs.items():
        for needed in targets:
            denial = pipeline.enforcer.check(caller, needed)
            if denial is not None:
                denied[command] = f"{denial.action} on {denial.resource}"
                break
    return denied


def _key_names(ddb: Any, table: str) -> tuple[str, str]:
    """(partition key, sort key) of a deployed table, as its template defined them."""
    schema = ddb.describe_table(TableName=table)["Table"]["KeySchema"]
    keys = {element["KeyType"]: element["AttributeName"] for element in schema}
    return keys["HASH"], keys.get("RANGE", "")


def _trail_table(items: list[dict[str, Any]], *, first: Sequence[str]) -> str:
    """Items as the CLI's table (``render``), turned on its side: one row per attribute (keys
    first), one column per item, so that a few events with many attributes fit a terminal."""
    if not items:
        return "(no events)"
    names = [name for name in first if name] + sorted(
        {name for item in items for name in item} - set(first)
    )
    headers = ["attribute"] + [
        f"event {index}" + (" (newest)" if index == 1 and len(items) > 1 else "")
        for index in range(1, len(items) + 1)
    ]
    rows = [
        [name]
        + [render.cell(item[name], width=_TRAIL_CELL) if name in item else "" for item in items]
        for name in names
    ]
    return render.table(headers, rows)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="python -m audit_stack.local",
        description="Run the synthesized audit pipeline on an embedded AWS emulator (loopback).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("demo", "deploy, publish the original payload, print the recorded audit trail, stop"),
        ("up", "run the emulator and its event-source pollers until Ctrl-C"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--assembly", default="cdk.out", help="cloud assembly (cdk.out)")
        command.add_argument(
            "--stack", help="stack to deploy (default: the only one with an AuditPipeline)"
        )
        command.add_argument(
            "--pipeline",
            metavar="ID",
            help="the AuditPipeline's construct id or path (default: the only one in the stack)",
        )
        command.add_argument(
            "--verbose", action="store_true", help="print emulator and function logs"
        )
        command.add_argument(
            "--as",
            dest="principal",
            metavar="ARN",
            help="the IAM principal outside callers (CLI, AWS CLI, boto3) act as: an ARN, or "
            "the logical id of a role of the stack (default: the account's "
            "role/Administrator, with AdministratorAccess)",
        )
        command.add_argument(
            "--no-enforce-iam",
            dest="enforce_iam",
            action="store_false",
            help="allow every request (identity and resource policies are not evaluated)",
        )
        if name == "up":
            command.add_argument(
                "--port",
                type=int,
                default=LOCAL_PORT,
                help=f"loopback port (default {LOCAL_PORT}: `audit --local`; 0: a free one)",
            )
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "demo":
            return demo(
                arguments.assembly,
                arguments.stack,
                arguments.pipeline,
                arguments.verbose,
                out,
                principal=arguments.principal,
                enforce_iam=arguments.enforce_iam,
            )
        return up(
            arguments.assembly,
            arguments.stack,
            arguments.pipeline,
            arguments.port,
            arguments.verbose,
            out,
            principal=arguments.principal,
            enforce_iam=arguments.enforce_iam,
        )
    except PortUnavailableError as error:
        # One line, no traceback: the port is the user's to change.
        out.write(f"error: {error}\n")
        return 2
    except OSError as error:
        out.write(f"\nerror: {error}\n")
        return 1
    except (
        DeploymentError,
        PipelineNotFoundError,
        FunctionInvocationError,
        RuntimeError,
        TimeoutError,
    ) as error:
        out.write(f"\nerror: {error}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
