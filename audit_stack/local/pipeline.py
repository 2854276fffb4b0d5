"""LocalAuditPipeline: the synthesized stack in an embedded AWS emulator, for tests and demos.

Everything runs in this process and its worker processes, on 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, TypeVar

from moto.core.models import DEFAULT_ACCOUNT_ID

from audit_stack import discovery, lambda_code
from audit_stack.discovery import (
    PipelineNotFoundError,
    PipelineResources,
    find_pipelines,
    select_pipeline,
)
from audit_stack.local.access.enforcer import Enforcer
from audit_stack.local.access.identities import (
    INTERNAL_ACCESS_KEY_ID,
    OUTSIDE_ACCESS_KEY_ID,
    Caller,
    Identities,
    credentials,
    default_administrator,
)
from audit_stack.local.access.policies import load_policies
from audit_stack.local.access.requests import Target
from audit_stack.local.clients import EmulatorClients
from audit_stack.local.control.activity import Activity
from audit_stack.local.control.idle import IdleScheduler
from audit_stack.local.control.moto_hooks import MotoHooks, queue_snapshot
from audit_stack.local.control.sns_delivery import SnsDelivery
from audit_stack.local.control.sns_signing import (
    NotificationSigner,
    SigningCertificateApi,
    SnsSigningHook,
    notification,
    sqs_body,
    topic_exists,
)
from audit_stack.local.deploy.deployer import Deployer
from audit_stack.local.deploy.model import Deployment, FunctionSpec
from audit_stack.local.deploy.report import deployment_report
from audit_stack.local.deploy.template import CloudAssembly, DeploymentError
from audit_stack.local.esm.stream import TTL_IDENTITY, StreamWorker
from audit_stack.local.esm.worker import EventSourceWorker
from audit_stack.local.http.operations import Operation
from audit_stack.local.http.server import EmulatorServer, Endpoint, PortUnavailableError
from audit_stack.local.instruments.faults import Faults
from audit_stack.local.instruments.metering import Instrumentation
from audit_stack.local.runtime.pool import FunctionRuntime, TooManyRequestsError
from audit_stack.local.runtime.python_path import LambdaLibraries
from audit_stack.local.runtime.registry import FunctionRegistry, Invocation, InvocationResult
from audit_stack.local.services.lambda_api import LambdaApi
from audit_stack.local.services.message_moves import MessageMoveTasks
from audit_stack.local.services.skipped_services import SkippedServiceApi, skipped_services
from audit_stack.local.services.stack_api import StackApi
from audit_stack.local.services.sts_api import CallerIdentityApi

# moto's backends are module-level state: one emulator per process at a time.
_PROCESS_LOCK = threading.Lock()
_FUNCTION_OUTPUT_SUFFIX = "FunctionName"
# On shutdown the SQS clock jumps this far, so that open long polls of other clients end at once.
_SHUTDOWN_CLOCK_JUMP_SECONDS = 86_400.0
_MAX_PORT = 65_535
_Part = TypeVar("_Part")


class PipelineNotRunningError(RuntimeError):
    """What needs a started pipeline was asked of one not started (or already stopped)."""

    def __init__(self) -> None:
        super().__init__("the pipeline is not running")


def _running(part: _Part | None) -> _Part:
    """The one "not running" guard: ``part`` of a started pipeline (None until it exists)."""
    if part is None:
        raise PipelineNotRunningError()
    return part


class FunctionInvocationError(Exception):
    """A function invocation failed (Lambda's FunctionError: Unhandled)."""

    def __init__(self, function_name: str, error: dict[str, Any]) -> None:
        self.function_name = function_name
        self.error = error
        self.error_type = str(error.get("errorType", ""))
        self.error_message = str(error.get("errorMessage", ""))
        super().__init__(f"{function_name} failed: {self.error_type}: {self.error_message}")


class LocalAuditPipeline:
    """The stack of a cloud assembly, running locally while the context is open.

    ::

        with LocalAuditPipeline("cdk.out") as pipeline:
            pipeline.invoke("publisher", {"email": "john.doe@mail.com"})
            pipeline.run_until_idle()
            table = pipeline.table_name

    The whole stack is deployed, after the stacks it depends on in the same cloud assembly
    (``stacks``); ``invoke("publisher")``, the queues and the table are those of one
    AuditPipeline in it, found by the marks the construct puts in the template.

    :param assembly_dir: the ``cdk.out`` folder of ``cdk synth``.
    :param stack_name: the stack to deploy; by default the only one holding an AuditPipeline.
    :param pipeline: the AuditPipeline (its construct id, or its path in the stack); by default
        the only one in the stack. An error lists the choices otherwise.
    :param verbose: print deployment steps, event-source activity and function logs.
    :param region: the region the stack is deployed in.
    :param port: the loopback port to listen on (0: a free one).
    :param output: where verbose output goes (default stderr).
    :param principal: who calls from outside (``client()``, ``invoke()``, the CLI, the AWS CLI):
        an IAM ARN, or the logical id of a role of the template; by default the account's
        ``role/Administrator``. A role of the template calls with its own policies; any other
        principal holds AdministratorAccess.
    :param enforce_iam: evaluate identity and resource policies on every request, as AWS does
        (False: every request is allowed, as before enforcement existed).
    """

    def __init__(
        self,
        assembly_dir: str | Path = "cdk.out",
        stack_name: str | None = None,
        *,
        pipeline: str | None = None,
        verbose: bool = False,
        region: str = "us-east-1",
        port: int = 0,
        output: TextIO | None = None,
        principal: str | None = None,
        enforce_iam: bool = True,
    ) -> None:
        if not 0 <= port <= _MAX_PORT:
            raise PortUnavailableError(
                port,
                f"is not a TCP port (0 to {_MAX_PORT})",
                f"pass --port N between 1024 and {_MAX_PORT} (0: a free one)",
            )
        self._assembly = CloudAssembly(assembly_dir, stack_name)
        self._pipelines = find_pipelines(self._assembly.template)
        # Any template deploys; one without an AuditPipeline (the benchmark's original
        # configuration, a test's probe) has no pipeline to resolve roles in.
        self._pipeline: PipelineResources | None = (
            select_pipeline(self._pipelines, pipeline, where=f"stack {self._assembly.stack_name}")
            if self._pipelines or pipeline is not None
            else None
        )
        self._verbose = verbose
        self._region = region
        self._output = output
        self._activity = Activity()
        self._hooks = MotoHooks()
        self._sns_signing = SnsSigningHook()
        self._signer: NotificationSigner | None = None
        self._faults = Faults()
        # Counts every request at the endpoint; injects faults only inside inject_faults blocks.
        self.instrumentation = Instrumentation(self._faults, notify=self._activity.notify)
        self._clients = EmulatorClients(region=region, endpoint_url=lambda: self.endpoint_url)
        self._functions = FunctionRegistry(self._activity)
        self._lambda_api = LambdaApi(self._functions, on_event=self._event)
        self._move_tasks = MessageMoveTasks(
            lambda: self._clients.cached("sqs"),
            activity=self._activity,
            region=region,
            account_id=self.account_id,
            on_event=self._event,
        )
        self._endpoint = Endpoint(
            activity=self._activity,
            faults=self._faults,
            instrumentation=self.instrumentation,
            local_apis={"lambda": self._lambda_api, "sqs": self._move_tasks},
            on_event=self._event,
        )
        self._server = EmulatorServer(self._endpoint, on_event=self._event, port=port)
        self._event_sources: list[EventSourceWorker] = []
        self._stream_sources: list[StreamWorker] = []
        self._idle = IdleScheduler(
            activity=self._activity,
            sources=lambda: self._event_sources,
            streams=lambda: self._stream_sources,
            snapshot=lambda name: queue_snapshot(self.account_id, self._region, name),
            other_work=self._work_in_flight,
            now_ms=self._hooks.now_ms,
            advance=self.advance_time,
            on_event=self._event,
        )
        self._deployment: Deployment | None = None
        self._libraries: LambdaLibraries | None = None
        self._aliases: dict[str, str] = {}
        self._logs: deque[tuple[str, str]] = deque(maxlen=10_000)
        self._owns_process_lock = False
        self.principal = principal or default_administrator(self.account_id)
        self.enforce_iam = enforce_iam
        self._identities = Identities(self.principal)
        self._enforcer: Enforcer | None = None
        self._sns_delivery = SnsDelivery(self._delivery_failure, self._event)

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> LocalAuditPipeline:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            self.stop()
            return
        try:
            self.stop()
        except Exception as stop_error:
            # The body's exception is the one to see; the shutdown problem is reported beside it.
            print(f"LocalAuditPipeline: error while stopping: {stop_error!r}", file=sys.stderr)

    def start(self) -> None:
        """Start the emulator, deploy the stack and start the event-source mappings.

        :raises PortUnavailableError: the port is taken (nothing is left running).
        """
        if not _PROCESS_LOCK.acquire(blocking=False):
            raise RuntimeError(
                "another LocalAuditPipeline is running in this process (moto's state is "
                "process-wide); stop it first"
            )
        self._owns_process_lock = True
        try:
            self._hooks.install()
            self._sns_delivery.install()
            self._server.start()
            self._event(f"emulator listening on {self._server.endpoint_url}")
            # A certificate of this run's own, served here and trusted by its workers only.
            self._signer = NotificationSigner.generate(self._server.endpoint_url)
            self._sns_signing.install(self._signer)
            self._endpoint.serve("sns", SigningCertificateApi(self._signer, topic_exists))
            self._reset_moto()
            self._deploy()
        except BaseException:
            self.stop()
            raise

    def _deploy(self) -> None:
        deployment = Deployer(
            self._assembly,
            client=self._clients.cached,
            region=self._region,
            account_id=self.account_id,
        ).deploy()
        self._deployment = deployment
        for stack in deployment.stacks:
            for line in deployment_report(stack):
                self._event(line)
        # The policies of every stack deployed (a dependency's roles, keys and queues too).
        store = load_policies(self._assembly.template, deployment)
        for dependency in deployment.dependencies:
            store.merge(
                load_policies(self._assembly.stack(dependency.stack_name).template, dependency)
            )
        if not self.principal.startswith("arn:"):
            # A role of the template by logical id: its physical name is known only now.
            named = deployment.resources.get(self.principal)
            if deployment.resource_types.get(self.principal) != "AWS::IAM::Role" or named is None:
                raise DeploymentError(
                    f"principal {self.principal!r} is neither an IAM ARN nor the logical id of "
                    "an AWS::IAM::Role of the stack"
                )
            self.principal = named.attributes["Arn"]
            self._identities.outside = Caller(self.principal)
        for unknown in store.unknown_managed_policies:
            self._event(f"not reproduced: AWS managed policy {unknown} (grants nothing locally)")
        self._enforcer = Enforcer(
            store,
            self._identities,
            region=self._region,
            enabled=self.enforce_iam,
            on_event=self._event,
        )
        self._endpoint.authorize_with(self._enforcer.authorize)
        self._event(
            f"IAM enforced: requests from outside call as {self.principal}"
            if self.enforce_iam
            else "IAM not enforced (enforce_iam=False): every request is allowed"
        )
        # CloudFormation's read API answers from the deployment: clients resolve it as on AWS.
        # Its tags name the selected pipeline, which `audit --local` then uses by default.
        self._endpoint.serve(
            "cloudformation",
            StackApi(deployment, self._assembly.template, selected_pipeline=self.pipeline),
        )
        # Who the caller is, as IAM sees it here (`audit redact` records it).
        self._endpoint.serve("sts", CallerIdentityApi(self._identities, self.account_id))
        for service in skipped_services(
            deployment.created_types.values(), (kind for _, kind, _ in deployment.skipped)
        ):
            self._endpoint.serve(service, SkippedServiceApi())
        if self._pipeline is not None:
            for role in self._pipeline.function_roles:
                self._aliases[role] = self.resource_name(role)
        else:
            # Without an AuditPipeline, an output "<Role>FunctionName" names a role's function.
            for output, value in deployment.outputs.items():
                role = output.removesuffix(_FUNCTION_OUTPUT_SUFFIX)
                if role and role != output:
                    self._aliases[role.lower()] = value
        self._libraries = LambdaLibraries()
        for spec in self.functions:
            key = self._identities.add_function(spec.arn, store.function_roles[spec.arn])
            self._functions.add(
                FunctionRuntime(
                    spec,
                    endpoint_url=self._server.endpoint_url,
                    region=self._region,
                    on_log=self._function_log,
                    python_path=self._libraries.python_path(spec),
                    bootstrap=[_running(self._signer).bootstrap_argument()],
                    credentials=credentials(key),
                )
            )
        roles_by_name = {spec.name: store.function_roles[spec.arn] for spec in self.functions}
        for source in (source for stack in deployment.stacks for source in stack.event_sources):
            # The mapping polls as its function's execution role.
            poller_key = self._identities.add_poller(
                source.uuid, roles_by_name[source.function_name]
            )
            worker = EventSourceWorker(
                source,
                sqs=self._clients.cached("sqs", poller_key),
                invoke=self._invoke_from_event_source,
                activity=self._activity,
                region=self._region,
                snapshot=functools.partial(
                    queue_snapshot, self.account_id, self._region, source.queue_name
                ),
                now_ms=self._hooks.now_ms,
                on_event=self._event,
            )
            self._event_sources.append(worker)
            worker.start()
        for stream in (source for stack in deployment.stacks for source in stack.stream_sources):
            stream_worker = StreamWorker(
                stream,
                shard_records=functools.partial(self._stream_records, stream.table_name),
                invoke=self._invoke_from_stream,
                activity=self._activity,
                region=self._region,
                now_ms=self._hooks.now_ms,
                on_event=self._event,
                read_denied=functools.partial(
                    self._stream_read_denied, roles_by_name[stream.function_name], stream.stream_arn
                ),
            )
            self._stream_sources.append(stream_worker)
            stream_worker.start()

    def stop(self) -> None:
        """Stop everything and free the port, within seconds even with work in flight: busy
        workers are killed, and the messages of their batches, never deleted, come back after
        their visibility timeout, as on AWS. Safe before start and to repeat."""
        errors: list[BaseException] = []

        def attempt(step: Callable[[], None]) -> None:
            try:
                step()
            except BaseException as error:
                errors.append(error)

        sources, self._event_sources = self._event_sources, []
        streams, self._stream_sources = self._stream_sources, []
        for stream in streams:
            attempt(stream.request_stop)
        for source in sources:
            attempt(source.request_stop)
        # Held requests go on, and busy invocations end now: their batches fail.
        attempt(self._faults.release_all)
        attempt(self._functions.close)
        for source in sources:
            attempt(source.join)
        for stream in streams:
            attempt(stream.join)
        attempt(self._move_tasks.stop)
        attempt(self._lambda_api.stop)
        if self._server.started:
            attempt(lambda: self._hooks.advance(_SHUTDOWN_CLOCK_JUMP_SECONDS))
            attempt(self._reset_moto)
            attempt(self._server.stop)
        attempt(self._clients.close)
        attempt(self._sns_delivery.uninstall)
        if self._libraries is not None:
            attempt(self._libraries.close)
            self._libraries = None
        attempt(self._hooks.uninstall)
        attempt(self._sns_signing.uninstall)
        self._endpoint.authorize_with(None)
        if self._owns_process_lock:
            self._owns_process_lock = False
            _PROCESS_LOCK.release()
        if errors:
            raise errors[0]

    def _reset_moto(self) -> None:
        # moto's own reset endpoint; the opener ignores proxy settings: loopback stays loopback.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with opener.open(request, timeout=30) as response:
            response.read()

    # -- what a test or a user reads -------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """Where the emulator listens, e.g. ``http://127.0.0.1:49152``."""
        return self._running_server().endpoint_url

    @property
    def region(self) -> str:
        return self._region

    @property
    def account_id(self) -> str:
        return str(DEFAULT_ACCOUNT_ID)

    @property
    def outputs(self) -> dict[str, str]:
        """The stack's outputs, same keys as the deployed stack's CfnOutputs."""
        return dict(_running(self._deployment).outputs)

    @property
    def stack_name(self) -> str:
        """The deployed stack's name (its artifact id in the cloud assembly)."""
        return self._assembly.stack_name

    @property
    def pipeline(self) -> str | None:
        """The selected AuditPipeline's construct path in the stack, e.g. ``Audit``; None for a
        stack without one."""
        return self._pipeline.path if self._pipeline is not None else None

    @property
    def pipelines(self) -> list[str]:
        """The construct paths of every AuditPipeline in the stack."""
        return [pipeline.path for pipeline in self._pipelines]

    @property
    def function_roles(self) -> list[str]:
        """The roles of the selected pipeline's functions, e.g. ``["publisher", "recorder"]``."""
        return list(self._pipeline.function_roles) if self._pipeline is not None else []

    def resource_name(self, role: str) -> str:
        """What the selected pipeline's resource with this role answers to Ref: a topic's ARN,
        a queue's URL, a table's or a function's name (roles in ``audit_stack.discovery``)."""
        if self._pipeline is None:
            raise PipelineNotFoundError(f"stack {self.stack_name} holds no AuditPipeline")
        return _running(self._deployment).resources[self._pipeline.logical_id(role)].ref

    def subject_of(self, email: str) -> str:
        """The subject the selected pipeline records ``email`` (or any other identifier) under:
        its HMAC pseudonym (keyed with the stack's secret), or its normal form for a pipeline
        that keeps subjects in clear."""
        normalized, _ = lambda_code.audit_events_module("event").normalize_subject(email)
        try:
            secret_arn = self.resource_name(discovery.PSEUDONYM_SECRET)
        except KeyError:  # subject_in_clear: the pipeline has no secret
            return str(normalized)
        # The emulator's own read: the secret's policy may deny the outside principal (as on
        # AWS, where `audit trail` needs a grant_lookup).
        secret = self._clients.cached("secretsmanager").get_secret_value(SecretId=secret_arn)
        return lambda_code.pseudonymous_subject(normalized, str(secret["SecretString"]).encode())

    @property
    def topic_arn(self) -> str:
        return self.resource_name(discovery.TOPIC)

    @property
    def queue_url(self) -> str:
        return self.resource_name(discovery.QUEUE)

    @property
    def dead_letter_queue_url(self) -> str:
        return self.resource_name(discovery.DEAD_LETTER_QUEUE)

    @property
    def table_name(self) -> str:
        return self.resource_name(discovery.TABLE)

    @property
    def deployment(self) -> Deployment:
        """What was created, skipped and not reproduced, with physical names."""
        return _running(self._deployment)

    @property
    def stacks(self) -> list[str]:
        """The stacks deployed: those the chosen one depends on, in order, then itself."""
        return [*self._assembly.dependency_stacks, self._assembly.stack_name]

    @property
    def functions(self) -> list[FunctionSpec]:
        """Every function deployed, of every stack deployed."""
        deployment = _running(self._deployment)
        return [spec for stack in deployment.stacks for spec in stack.functions]

    @property
    def template(self) -> dict[str, Any]:
        """The stack's synthesized template, as read from the cloud assembly."""
        return self._assembly.template

    @property
    def sns_signer(self) -> NotificationSigner:
        """The key and certificate this run's SNS signs notifications with (its workers pin the
        certificate; ``sns_signer.sign(envelope)`` signs a hand-made one as SNS would)."""
        return _running(self._signer)

    def signed_notification(self, message: str, *, topic_arn: str | None = None) -> str:
        """An SQS body as this emulator's SNS delivers ``message`` from the topic (default: the
        pipeline's): signed with the emulator's certificate, which only its workers trust.

        For rehearsals that put a genuine-looking delivery straight into a queue (the DLQ)."""
        return sqs_body(
            notification(
                _running(self._signer), topic_arn=topic_arn or self.topic_arn, message=message
            )
        )

    def _running_server(self) -> EmulatorServer:
        return _running(self._server if self._server.started else None)

    def client(self, service: str, *, as_emulator: bool = False, **kwargs: Any) -> Any:
        """A new boto3 client bound to the emulator, calling as ``principal`` (no proxies).

        :param as_emulator: call with the emulator's own credentials, which IAM does not check:
            a test's way to set up what no principal may do on AWS (a message straight into a
            queue only the topic may feed, a tampered record of an append-only table).
        """
        self._running_server()
        key = INTERNAL_ACCESS_KEY_ID if as_emulator else OUTSIDE_ACCESS_KEY_ID
        return self._clients.new(service, access_key_id=key, **kwargs)

    def function_name(self, name: str) -> str:
        """The physical name of a function given as its role in the selected pipeline
        ("publisher", "recorder"), its construct path in its stack ("Thumbnailer"), logical id
        or name."""
        functions = self.functions
        if name in self._aliases:
            return self._aliases[name]
        for spec in functions:
            if name in {spec.name, spec.logical_id, spec.arn, spec.construct_path} - {""}:
                return spec.name
        known = sorted(self._aliases) + sorted(spec.logical_id for spec in functions)
        raise KeyError(f"no function {name!r} in the stacks; known: {', '.join(known)}")

    def invocations(self, name: str | None = None) -> list[Invocation]:
        """Finished invocations, oldest first, of one function or of all."""
        wanted = self.function_name(name) if name is not None else None
        return [
            invocation
            for invocation in list(self._functions.invocations)
            if wanted is None or invocation.function_name == wanted
        ]

    def logs(self, name: str | None = None) -> list[str]:
        """The captured stdout/stderr lines of one function's workers, or of all."""
        wanted = self.function_name(name) if name is not None else None
        return [line for function, line in list(self._logs) if wanted in (None, function)]

    # -- what a test or a user does --------------------------------------------------------------

    def invoke(self, name: str, payload: Any) -> Any:
        """Invoke a function through the emulator's Lambda API (RequestResponse), like boto3 does.

        Returns the parsed response; raises FunctionInvocationError carrying the function's
        errorMessage when it fails or times out.
        """
        function = self.function_name(name)
        response = self._clients.cached("lambda", OUTSIDE_ACCESS_KEY_ID).invoke(
            FunctionName=function, Payload=json.dumps(payload).encode()
        )
        body = response["Payload"].read()
        if response.get("FunctionError"):
            raise FunctionInvocationError(function, json.loads(body))
        return json.loads(body) if body else None

    def run_until_idle(self, timeout: float = 30.0, *, fast_forward: bool = True) -> None:
        """Return once the event-source queues are drained and no invocation is in flight.

        Drained means no visible, in-flight or delayed message in any queue that an event source
        mapping consumes (messages left in a dead-letter queue do not count). With fast_forward,
        when all that is left is messages waiting out their visibility timeout (a failed batch),
        SQS's virtual clock jumps to the moment the first of them becomes visible again, so
        retries and the redrive to the DLQ happen at once instead of after minutes.

        :raises TimeoutError: naming what is still pending.
        """
        self._idle.run_until_idle(timeout, fast_forward=fast_forward)

    @property
    def enforcer(self) -> Enforcer:
        """The IAM enforcement of the running emulator (its policies, its callers)."""
        return _running(self._enforcer)

    @property
    def failed_deliveries(self) -> list[tuple[str, str, str]]:
        """(subscription ARN, queue ARN, why) of each SNS → SQS delivery that failed."""
        return list(self._sns_delivery.failed)

    def _delivery_failure(self, topic_arn: str, queue_arn: str) -> str | None:
        if self._enforcer is None:
            return None
        return self._enforcer.delivery_failure(topic_arn, queue_arn)

    def _work_in_flight(self) -> list[str]:
        work: list[str] = []
        if self._functions.in_flight:
            work.append(f"{self._functions.in_flight} invocation(s) in flight")
        if self._move_tasks.running:
            work.append(f"{len(self._move_tasks.running)} message move task(s) running")
        return work

    @property
    def sqs_clock_offset(self) -> float:
        """Seconds that SQS's virtual clock is ahead of real time (advance_time, fast-forward)."""
        return self._hooks.offset_seconds

    def advance_time(self, seconds: float) -> None:
        """Move SQS's clock forward: visibility timeouts and delays end sooner, and messages
        older than their queue's MessageRetentionPeriod are deleted (as SQS does; they are
        never received nor dead-lettered).

        DynamoDB streams age with it too: a record older than 24 hours by this clock is
        trimmed, unread by a mapping that had not read it. Function timeouts, the back-off of
        throttled invocations and CloudWatch stay in real time.
        """
        for stream in self._stream_sources:
            stream.observe()  # records written so far age with the jump (the 24-hour trim)
        self._hooks.advance(seconds)
        self._activity.changed()

    # -- retention (issue 18 item 1): DynamoDB's TTL, run when asked ---------------------------

    def expire_records(self, now: datetime | None = None) -> int:
        """Do what DynamoDB's TTL does by ``now`` (default: the real time): delete every item
        of each table of the stack with a ``TimeToLiveSpecification`` whose TTL attribute is a
        number of epoch seconds less than ``now``. Returns how many items were deleted.

        moto deletes nothing by itself, and DynamoDB deletes expired items in the background,
        typically within two days, so the emulator has no moment of its own to do it: tests and
        rehearsals call this when the TTL process should have run. The deletes are the
        service's (the emulator's credentials): TTL is no principal, and a table's resource
        policy does not stop it (the deletes go to moto's backend itself).
        """
        moment = (now or datetime.now(UTC)).timestamp()
        deployment = _running(self._deployment)
        dynamodb = self.client("dynamodb", as_emulator=True)
        deleted = 0
        for logical_id, resource in self.template.get("Resources", {}).items():
            ttl = resource.get("Properties", {}).get("TimeToLiveSpecification") or {}
            if resource.get("Type") != "AWS::DynamoDB::Table" or ttl.get("Enabled") is not True:
                continue
            table = deployment.resources[logical_id].ref
            attribute = str(ttl["AttributeName"])
            keys = [entry["AttributeName"] for entry in resource["Properties"].get("KeySchema", [])]
            expired = [
                {name: item[name] for name in keys}
                for page in dynamodb.get_paginator("scan").paginate(TableName=table)
                for item in page["Items"]
                if float(item.get(attribute, {}).get("N", "inf")) < moment
            ]
            for key in expired:  # after the scan: deletes do not move its pages
                self._ttl_delete(table, key)
            deleted += len(expired)
        return deleted

    def redrive_dlq(self, timeout: float = 60.0) -> int:
        """Move every dead-letter queue's messages back to their source queue; the number moved.

        Goes through the emulator's StartMessageMoveTask API and waits for each task to finish.
        """
        sqs = self._clients.cached("sqs")
        dead_letter_arns = sorted(
            {
                queue.dead_letter_target_arn
                for stack in _running(self._deployment).stacks
                for queue in stack.queues
                if queue.dead_letter_target_arn
            }
        )
        moved = 0
        for arn in dead_letter_arns:
            handle = sqs.start_message_move_task(SourceArn=arn)["TaskHandle"]
            task = self._move_tasks.task(handle)
            if not task.finished.wait(timeout):
                raise TimeoutError(f"redrive of {arn} not finished after {timeout:.1f} s")
            if task.status != "COMPLETED":
                raise RuntimeError(f"redrive of {arn} {task.status}: {task.failure_reason}")
            moved += task.moved
        return moved

    @contextmanager
    def event_sources_paused(self) -> Iterator[None]:
        """Like disabling every event-source mapping for the block: nothing is received (a
        batching window under way ends at once and its batch is invoked)."""
        for source in self._event_sources:
            source.pause()
        for stream in self._stream_sources:
            stream.pause()
        try:
            yield
        finally:
            for source in self._event_sources:
                source.resume()
            for stream in self._stream_sources:
                stream.resume()

    @contextmanager
    def stream_sources_paused(self) -> Iterator[None]:
        """Like disabling the DynamoDB-stream event-source mappings only, for the block: their
        records wait in the stream and are delivered, in order, once it ends."""
        for stream in self._stream_sources:
            stream.pause()
        try:
            yield
        finally:
            for stream in self._stream_sources:
                stream.resume()

    @contextmanager
    def inject_fault(
        self,
        operation: str,
        *,
        error_code: str | None = None,
        message: str = "Injected by LocalAuditPipeline.inject_fault",
        latency: float = 0.0,
        function: str | None = None,
    ) -> Iterator[None]:
        """Make an AWS operation (``"dynamodb:PutItem"``) slow and/or fail for the block.

        ``latency`` holds each matching request that long (released early when the block ends);
        ``error_code`` then answers it with that AWS error instead of performing it. With
        ``function`` (a role, logical id or name) and ``"lambda:Invoke"``, only that function's
        invocations fail, the event-source mappings' included: ``TooManyRequestsException`` is a
        throttle (retried until the batch's visibility timeout ends), any other code fails the
        batch.
        """
        self._running_server()
        function_name = None
        if function is not None:
            if operation.lower() != "lambda:invoke":
                raise ValueError(
                    f"inject_fault: function= applies to lambda:Invoke, not {operation}"
                )
            function_name = self.function_name(function)
        with self._faults.fixed(
            operation,
            error_code=error_code,
            message=message,
            latency=latency,
            function_name=function_name,
        ):
            yield

    def kill_busy_workers(self, name: str) -> list[int]:
        """Kill (SIGKILL) every worker of a function that is running an invocation right now, as
        when an execution environment crashes mid-batch; the process ids killed."""
        _running(self._deployment)
        return self._functions.find(self.function_name(name)).kill_busy_workers()

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
        """Wait (woken by every change in the emulator) until ``predicate()`` holds."""
        if not self._activity.wait_for(predicate, timeout):
            raise TimeoutError(f"not reached within {timeout:.1f} s: {what or predicate}")

    # -- plumbing --------------------------------------------------------------------------------

    def _stream_read_denied(self, role_arn: str, stream_arn: str) -> str | None:
        """Why ``role_arn`` may not read the stream as Lambda's poller does, or None (also when
        IAM is not enforced): Lambda reads a table's stream with the function's execution role,
        which needs these four actions (as ``grantStreamRead`` grants them)."""
        enforcer = self._enforcer
        if enforcer is None or not enforcer.enabled:
            return None
        caller = Caller(role_arn)
        for target in (
            Target("dynamodb:DescribeStream", stream_arn),
            Target("dynamodb:GetRecords", stream_arn),
            Target("dynamodb:GetShardIterator", stream_arn),
            Target("dynamodb:ListStreams", "*"),
        ):
            denial = enforcer.check(caller, target)
            if denial is not None:
                return denial.message()
        return None

    def _stream_records(self, table: str) -> list[dict[str, Any]]:
        """The table's stream records so far, oldest first (moto keeps them in-process)."""
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[self.account_id][self._region]
        shard = backend.tables[table].stream_shard if table in backend.tables else None
        return [] if shard is None else [found.record for found in list(shard.items)]

    def _ttl_delete(self, table: str, key: dict[str, Any]) -> None:
        """Delete as DynamoDB's TTL does: no caller, and the REMOVE stream record carries
        DynamoDB's service identity, as on AWS (a caller's deletion does not). In moto's
        backend directly, under the activity lock, so that no stream source takes the record
        before it is marked."""
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[self.account_id][self._region]
        with self._activity.condition:
            backend.delete_item(table, key)
            for record in reversed(self._stream_records(table)):
                if record.get("eventName") == "REMOVE" and record["dynamodb"].get("Keys") == key:
                    record["userIdentity"] = dict(TTL_IDENTITY)
                    break
        self._activity.changed()

    def _invoke_from_stream(self, function_name: str, payload: bytes) -> InvocationResult:
        return self._invoke_from_event_source(function_name, payload, trigger="dynamodb")

    def _invoke_from_event_source(
        self, function_name: str, payload: bytes, *, trigger: str = "sqs"
    ) -> InvocationResult:
        # The event-source mapping's Invoke goes through the same faults as the API's.
        injected = self._faults.apply(
            Operation("lambda", "Invoke", "rest", self._region, function_name)
        )
        if injected is not None:
            if injected.error.code == "TooManyRequestsException":
                raise TooManyRequestsError(injected.error.message)
            raise injected.error
        return self._functions.invoke(function_name, payload, trigger=trigger)

    def _label(self, function_name: str) -> str:
        for alias, name in self._aliases.items():
            if name == function_name:
                return alias
        return function_name

    def _function_log(self, function_name: str, line: str) -> None:
        self._logs.append((function_name, line))
        if self._verbose:
            self._print(f"[{self._label(function_name)}] {line}")

    def _event(self, message: str) -> None:
        if self._verbose:
            self._print(f"[emulator] {message}")

    def _print(self, text: str) -> None:
        stream = self._output or sys.stderr
        print(text, file=stream, flush=True)
