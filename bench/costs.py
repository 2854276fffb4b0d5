"""Public us-east-1 prices and the modelled cost per million audited events.

Requests and write units are exact: counted at the emulator's endpoint. Lambda duration is a
model: each invocation's handler CPU time (measured in its worker) plus an assumed latency for
each AWS call on its critical path (``CALL_LATENCY_MS``, assumptions stated in the report). The
emulator-measured duration gives a second, upper-bound figure: it includes the emulator's
process hand-off and every other process on this machine.

Prices are list prices after the free tiers, first volume tier. Each names where it was read and
when; re-check them at the official pages (aws.amazon.com/<service>/pricing/) before quoting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from audit_stack.local import OperationCount
from bench.configurations import CriticalPath, FunctionFacts, TemplateFacts
from bench.load import FunctionUse, SealRun, Usage

PRICES_TAKEN_ON = "2026-11-29"
MILLION = 1_000_000
# AWS bills "GB" of data as 2^30 bytes.
GB = 1024**3


@dataclass(frozen=True)
class Price:
    """One public price."""

    item: str
    usd: float
    unit: str
    source: str


SNS_PUBLISH = Price(
    "SNS standard topic: Publish or PublishBatch request (per 64 KB chunk); deliveries to SQS "
    "carry no SNS charge",
    0.50 / MILLION,
    "request",
    "https://www.factualminds.com/blog/amazon-sns-pricing-publishes-fanout-protocols/ (2026-06); "
    "https://www.deepakkarkala.com/playbooks/aws-for-mlops/async_event_driven/sns; a PublishBatch "
    "of up to 10 messages is one request per 64 KB chunk (aws.amazon.com/sns/pricing/)",
)
SQS_REQUEST = Price(
    "SQS standard queue: any request (per 64 KB chunk)",
    0.40 / MILLION,
    "request",
    "https://cloudburn.io/blog/amazon-sqs-pricing (us-east-1, March 2026); "
    "https://www.factualminds.com/blog/amazon-sqs-pricing-64kb-rule-fifo-vs-standard/ (2026-06)",
)
DYNAMODB_WRITE = Price(
    "DynamoDB on-demand: write request unit (1 KB; each GSI write costs its own)",
    0.625 / MILLION,
    "WRU",
    "https://airbyte.com/data-engineering-resources/dynamodb-pricing (after the Nov 2024 cut)",
)
DYNAMODB_READ = Price(
    "DynamoDB on-demand: read request unit (4 KB strongly consistent; half for eventually "
    "consistent)",
    0.125 / MILLION,
    "RRU",
    "https://airbyte.com/data-engineering-resources/dynamodb-pricing (after the Nov 2024 cut)",
)
KMS_ASYMMETRIC = Price(
    "KMS: asymmetric request (the sealer's Sign, ECDSA)",
    0.15 / 10_000,
    "request",
    "https://www.factualminds.com/blog/aws-kms-pricing-keys-requests-multi-region/ (2026-06: "
    "asymmetric at 5x the $0.03/10,000 symmetric rate; www.wring.co/blog/aws-kms-pricing-guide "
    "lists $0.03: the higher figure is used)",
)
SECRETS_MANAGER_CALL = Price(
    "Secrets Manager: API call",
    0.05 / 10_000,
    "request",
    "https://aws.amazon.com/secrets-manager/pricing/ ($0.05 per 10,000 API calls)",
)
LAMBDA_REQUEST = Price(
    "Lambda: request (arm64 and x86_64 alike)",
    0.20 / MILLION,
    "request",
    "https://raw.githubusercontent.com/api-evangelist/aws-lambda/refs/heads/main/plans/"
    "aws-lambda-plans-pricing.yml (read from aws.amazon.com/lambda/pricing/ on 2026-09-20)",
)
LAMBDA_GB_SECOND = {
    "arm64": Price(
        "Lambda arm64: duration",
        0.0000133334,
        "GB-second",
        "https://cloudchipr.com/blog/aws-lambda-pricing (first 7.5 billion GB-s per month); "
        "https://app.unpkg.com/artillery@2.0.28/files/lib/platform/aws-lambda/prices.js",
    ),
    "x86_64": Price(
        "Lambda x86_64: duration",
        0.0000166667,
        "GB-second",
        "https://cloudchipr.com/blog/aws-lambda-pricing (first 6 billion GB-s per month); "
        "https://app.unpkg.com/artillery@2.0.28/files/lib/platform/aws-lambda/prices.js",
    ),
}
CLOUDWATCH_LOGS_INGESTION = Price(
    "CloudWatch Logs: Standard log class data ingestion",
    0.50 / GB,
    "byte",
    "https://c3x.dev/blog/cloudwatch-logs-cost-optimization (us-east-1, June 2026: $0.50 per "
    "GB ingested); https://hykell.com/knowledge-base/aws-cloudwatch-logs-pricing "
    "(aws.amazon.com/cloudwatch/pricing/)",
)
CLOUDWATCH_LOGS_DATA_PROTECTION = Price(
    "CloudWatch Logs: data protection policy, data scanned (every byte ingested into a log "
    "group with a policy)",
    0.12 / GB,
    "byte",
    "https://c3x.dev/blog/cloudwatch-logs-cost-optimization (us-east-1, June 2026: $0.12 per "
    "GB processed); https://hykell.com/knowledge-base/aws-cloudwatch-logs-pricing ($0.12 per GB "
    "surcharge with Data Protection)",
)
S3_PUT = Price(
    "S3 Standard: PUT, COPY, POST or LIST request (a checkpoint written to the anchor bucket)",
    0.005 / 1000,
    "request",
    "https://c3x.dev/blog/s3-request-fees-explained (S3 Standard, Tier 1: $0.005 per 1,000); "
    "aws.amazon.com/s3/pricing/ (us-east-1)",
)
ALL_PRICES = (
    SNS_PUBLISH,
    SQS_REQUEST,
    DYNAMODB_WRITE,
    DYNAMODB_READ,
    KMS_ASYMMETRIC,
    SECRETS_MANAGER_CALL,
    LAMBDA_REQUEST,
    *LAMBDA_GB_SECOND.values(),
    CLOUDWATCH_LOGS_INGESTION,
    CLOUDWATCH_LOGS_DATA_PROTECTION,
    S3_PUT,
)
# The event source's receives and deletes at the most messages a call takes.
FULL_RECEIVE = 10
# SNS PublishBatch's most messages per request.
FULL_PUBLISH_BATCH = 10


@dataclass(frozen=True)
class FloorLine:
    """One component of the floor."""

    component: str
    usd_per_million: float


def floor_lines(
    events_per_publish: int = 1, messages_per_call: int = FULL_RECEIVE
) -> list[FloorLine]:
    """The least an SQS event source into DynamoDB can cost per million events: the SNS
    request (shared by ``events_per_publish`` events), the SQS send of each delivery, the
    event source's receive and delete (``messages_per_call`` each), one 1-WRU write.
    Lambda's own requests and duration are left out: the floor is what the services bill
    whatever code runs."""
    if events_per_publish < 1 or messages_per_call < 1:
        raise ValueError("events_per_publish and messages_per_call must be at least 1")
    return [
        FloorLine(
            "SNS Publish"
            if events_per_publish == 1
            else f"SNS PublishBatch of {events_per_publish}",
            SNS_PUBLISH.usd / events_per_publish * MILLION,
        ),
        FloorLine("SQS SendMessage (the subscription's delivery)", SQS_REQUEST.usd * MILLION),
        FloorLine(
            f"SQS ReceiveMessage + DeleteMessageBatch at {messages_per_call} per call",
            2 * SQS_REQUEST.usd / messages_per_call * MILLION,
        ),
        FloorLine("DynamoDB: 1 write unit", DYNAMODB_WRITE.usd * MILLION),
    ]


def floor_per_million(events_per_publish: int = 1, messages_per_call: int = FULL_RECEIVE) -> float:
    """The floor's total (see :func:`floor_lines`)."""
    return sum(line.usd_per_million for line in floor_lines(events_per_publish, messages_per_call))


# $1.605 and, with PublishBatch of 10, $1.155 per million events.
FLOOR_PER_MILLION = floor_per_million()
FLOOR_PUBLISH_BATCH_PER_MILLION = floor_per_million(events_per_publish=FULL_PUBLISH_BATCH)

# CloudWatch Logs counts each log event's UTF-8 message plus 26 bytes (the PutLogEvents size
# rule, docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html);
# the model bills those bytes too, an assumption on the high side.
LOG_EVENT_OVERHEAD_BYTES = 26

# Representative values for Lambda's own log lines: a request id is a UUID, an X-Ray trace id
# "1-<8 hex>-<24 hex>", a segment id 16 hex digits; durations with two decimals.
_REQUEST_ID = "8286a188-ba32-4475-8077-530cd35c09a9"
_TRACE_ID = "1-6571c2f3-5f0b7e8a9c1d2e3f4a5b6c7d"
_SEGMENT_ID = "3c4e5f6a7b8c9d0e"
_TIME = "2026-11-29T12:00:00.000Z"


def lambda_platform_lines(function: FunctionFacts) -> tuple[str, ...]:
    """The lines Lambda itself writes to the log group for one warm invocation, as documented
    (docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-logformat.html): with the
    JSON format a ``platform.start`` and a ``platform.report`` record (with the trace when
    tracing is active), with the Text format ``START``, ``END`` and ``REPORT`` (with ``XRAY
    TraceId`` when tracing is active). With the JSON format and the system log level WARN,
    neither (AWS's event mapping for system log levels puts both at INFO). The emulator does
    not write them: they are modelled."""
    memory = function.memory_mb
    if function.log_format.upper() == "JSON" and function.system_log_level.upper() == "WARN":
        return ()
    if function.log_format.upper() == "JSON":
        tracing = (
            f',"tracing":{{"spanId":"{_SEGMENT_ID}","type":"X-Amzn-Trace-Id",'
            f'"value":"Root={_TRACE_ID};Parent={_SEGMENT_ID};Sampled=1"}}'
            if function.tracing
            else ""
        )
        return (
            f'{{"time":"{_TIME}","type":"platform.start","record":{{"requestId":"{_REQUEST_ID}",'
            f'"version":"$LATEST"}}}}',
            f'{{"time":"{_TIME}","type":"platform.report","record":{{"requestId":"{_REQUEST_ID}",'
            f'"metrics":{{"durationMs":12.34,"billedDurationMs":13,"memorySizeMB":{memory},'
            f'"maxMemoryUsedMB":{min(memory, 96)}}}{tracing},"status":"success"}}}}',
        )
    xray = (
        f"XRAY TraceId: {_TRACE_ID}\tSegmentId: {_SEGMENT_ID}\tSampled: true"
        if function.tracing
        else ""
    )
    return (
        f"START RequestId: {_REQUEST_ID} Version: $LATEST",
        f"END RequestId: {_REQUEST_ID}",
        f"REPORT RequestId: {_REQUEST_ID}\tDuration: 12.34 ms\tBilled Duration: 13 ms\t"
        f"Memory Size: {memory} MB\tMax Memory Used: {min(memory, 96)} MB\t{xray}",
    )


def log_event_bytes(messages: list[str] | tuple[str, ...]) -> int:
    """What CloudWatch Logs counts for these log events: each message's UTF-8 bytes plus the
    per-event overhead."""
    return sum(len(message.encode("utf-8")) + LOG_EVENT_OVERHEAD_BYTES for message in messages)


def platform_log_bytes(function: FunctionFacts) -> int:
    """Modelled bytes of Lambda's own lines per invocation of ``function``."""
    return log_event_bytes(lambda_platform_lines(function))


def function_log_bytes(use: FunctionUse, function: FunctionFacts) -> tuple[int, int]:
    """(captured, modelled) log bytes of a function's invocations in a run: the lines the
    emulator captured from its code, plus each captured line's event overhead; Lambda's own
    lines per invocation."""
    captured = sum(use.log_bytes) + LOG_EVENT_OVERHEAD_BYTES * sum(use.log_events)
    return captured, platform_log_bytes(function) * use.invocations


# An assumption, not a measurement: the in-region latency a Lambda function waits per AWS call.
# DynamoDB advertises single-digit milliseconds (aws.amazon.com/dynamodb/: "single-digit
# millisecond performance at any scale"): the top of that range is used. SNS, SQS, KMS and
# Secrets Manager publish no latency figure; tens of milliseconds are assumed. The report shows
# the cost with twice these latencies as well.
CALL_LATENCY_MS = {
    "dynamodb": 10.0,
    "sqs": 20.0,
    "sns": 20.0,
    "kms": 20.0,
    "secretsmanager": 30.0,
}


# Keys of the lines the integrity models replace (CostLine.key).
READ_BACK = "head_queries"
DIGEST_ITEMS = "digest_items"
SIGNS = "signs"
CHECKPOINT_PUTS = "checkpoint_puts"
SEALER_LOGS = "sealer_logs"
SEALER_INVOCATIONS = "sealer_invocations"
SEALER_CPU = "sealer_cpu"
SEALER_WAITS = "sealer_waits"
# Lines paid once per sealer invocation (one stream batch: one digest, one Sign, its objects,
# its queries, its log lines), whatever the batch holds.
PER_BATCH_KEYS = (
    READ_BACK,
    DIGEST_ITEMS,
    SIGNS,
    CHECKPOINT_PUTS,
    SEALER_LOGS,
    SEALER_INVOCATIONS,
    SEALER_WAITS,
)


@dataclass(frozen=True)
class CostLine:
    """One component of the cost per million audited events.

    :param audit: part of the audit pipeline (SNS publish onwards, the floor's scope); the
        publisher function's own invocation is the application's (the seed's deleteAccount
        deletes the account) and is listed beside it.
    :param usd_per_million_upper: the same with the emulator-measured duration (duration lines
        only; the other lines are exact and equal in both columns).
    :param integrity: part of the integrity chain (the sealer's share).
    :param key: what the line prices, for the models that replace one line by another.
    """

    component: str
    units_per_event: float
    usd_per_million: float
    audit: bool = True
    usd_per_million_upper: float | None = None
    integrity: bool = False
    key: str = ""

    @property
    def upper(self) -> float:
        """The line with the emulator-measured duration (exact lines: the same figure)."""
        if self.usd_per_million_upper is None:
            return self.usd_per_million
        return self.usd_per_million_upper


def recorder_wait_ms(batch_size: int, path: CriticalPath, scale: float = 1.0) -> float:
    """Modelled time a recorder invocation waits on AWS for a batch of ``batch_size``."""
    rounds = math.ceil(batch_size / path.concurrent_writes) if batch_size else 0
    return scale * (rounds * CALL_LATENCY_MS["dynamodb"])


def modelled_ms(use: FunctionUse, waits_ms: list[float]) -> int:
    """Billed milliseconds: each invocation's CPU time plus its modelled waits, rounded up."""
    return sum(math.ceil(cpu + wait) for cpu, wait in zip(use.cpu_ms, waits_ms, strict=True))


def measured_ms(use: FunctionUse) -> int:
    """Billed milliseconds with the emulator's measured durations (an upper bound)."""
    return sum(math.ceil(duration) for duration in use.durations_ms)


def _count(requests: dict[str, OperationCount], operation: str) -> tuple[int, int]:
    """(requests, billed requests) of one operation."""
    found = requests.get(operation)
    return (found.requests, found.billed_requests) if found else (0, 0)


def cost_per_million(
    result: Usage,
    facts: TemplateFacts,
    path: CriticalPath,
    *,
    latency_scale: float = 1.0,
) -> list[CostLine]:
    """The cost of one million audited events at the run's counted request mix.

    CloudWatch Logs: every byte each function's code wrote in the run (captured by the
    emulator), plus Lambda's own START/REPORT lines (modelled: :func:`lambda_platform_lines`),
    and the data protection scan where the log group has a policy.

    Not counted: the event source's empty receives (on AWS the pollers long-poll: a cost per
    hour of idle time, not per event), CloudWatch metrics (the embedded-metric log lines are
    counted as log bytes), X-Ray, storage, the KMS requests of SQS/SNS server-side encryption
    (data keys are reused for 5 minutes), monthly key and secret charges.
    """
    if result.recorded == 0:
        raise ValueError("nothing was recorded: no cost per audited event")
    per_million = MILLION / result.recorded
    lines: list[CostLine] = []
    requests = result.requests

    def add(
        component: str,
        units: float,
        price: Price,
        *,
        audit: bool = True,
        upper_units: float | None = None,
        integrity: bool = False,
        key: str = "",
    ) -> None:
        lines.append(
            CostLine(
                component,
                units / result.recorded,
                units * price.usd * per_million,
                audit,
                None if upper_units is None else upper_units * price.usd * per_million,
                integrity,
                key,
            )
        )

    publishes, billed_publishes = _count(requests, "sns:Publish")
    add("SNS Publish", billed_publishes, SNS_PUBLISH)
    # SNS puts each published event into the subscribed queue: one SQS request each.
    add("SQS SendMessage by the SNS subscription", publishes, SQS_REQUEST)
    receive = result.requests.get("sqs:ReceiveMessage")
    nonempty_receives = (receive.requests - receive.empty_receives) if receive else 0
    add("SQS ReceiveMessage with messages (event source)", nonempty_receives, SQS_REQUEST)
    deletes = sum(
        _count(requests, operation)[1]
        for operation in ("sqs:DeleteMessageBatch", "sqs:DeleteMessage")
    )
    add("SQS DeleteMessage(Batch) (event source)", deletes, SQS_REQUEST)
    # The recorder's writes: PutItem (an idempotent event's transaction aside) and the PartiQL
    # INSERTs of its BatchExecuteStatement.
    write_units = sum(
        count.item_write_units
        for operation, count in result.requests.items()
        if operation in ("dynamodb:PutItem", "dynamodb:BatchExecuteStatement")
    ) * (1 + facts.global_secondary_indexes)
    add(
        f"DynamoDB write units (table + {facts.global_secondary_indexes} GSI)",
        write_units,
        DYNAMODB_WRITE,
    )
    secrets = _count(requests, "secretsmanager:GetSecretValue")[0]
    if secrets:
        add("Secrets Manager GetSecretValue (cached 5 min)", secrets, SECRETS_MANAGER_CALL)
    for logical_id, use in sorted(result.functions.items(), key=lambda item: item[0]):
        function = facts.functions[logical_id]
        role = "publisher" if logical_id == result.publisher else "recorder"
        audit = role == "recorder"
        if role == "publisher":
            waits = [latency_scale * CALL_LATENCY_MS["sns"]] * use.invocations
        else:
            waits = [recorder_wait_ms(size, path, latency_scale) for size in use.batch_sizes]
        add(f"Lambda requests: {role}", use.invocations, LAMBDA_REQUEST, audit=audit)
        gb_per_ms = function.memory_mb / 1024 / 1000
        add(
            f"Lambda duration: {role} ({function.architecture}, {function.memory_mb} MB)",
            modelled_ms(use, waits) * gb_per_ms,
            LAMBDA_GB_SECOND[function.architecture],
            audit=audit,
            upper_units=measured_ms(use) * gb_per_ms,
        )
        captured, platform = function_log_bytes(use, function)
        for component, units, price in log_lines(role, captured, platform, function):
            add(component, units, price, audit=audit)
    if result.seal is not None and result.seal.records_sealed:
        lines += _seal_lines(result.seal, facts, latency_scale)
    return lines


def _seal_lines(seal: SealRun, facts: TemplateFacts, latency_scale: float) -> list[CostLine]:
    """The sealer's share: its requests in one run, per record it sealed (the run's records
    and the warm-up's)."""
    requests = seal.requests
    lines: list[CostLine] = []
    recorded = seal.records_sealed
    per_million = MILLION / recorded

    def add(
        component: str,
        units: float,
        price: Price,
        upper_units: float | None = None,
        *,
        key: str = "",
    ) -> None:
        lines.append(
            CostLine(
                f"sealer: {component}",
                units / recorded,
                units * price.usd * per_million,
                True,
                None if upper_units is None else upper_units * price.usd * per_million,
                True,
                key,
            )
        )

    # The sealer reads no record back and takes no notice: the stream brings each record's
    # image, and stream reads by a Lambda trigger are free. It queries the chain's head (and,
    # for a batch delivered again, the newest digests): one RRU each, strongly consistent.
    add(
        "DynamoDB read units (chain-head queries)",
        _count(requests, "dynamodb:Query")[0],
        DYNAMODB_READ,
        key=READ_BACK,
    )
    digest_put = seal.requests.get("dynamodb:PutItem")
    add(
        "DynamoDB write units (digests)",
        digest_put.item_write_units if digest_put else 0,
        DYNAMODB_WRITE,
        key=DIGEST_ITEMS,
    )
    add("KMS Sign (one per digest)", _count(requests, "kms:Sign")[0], KMS_ASYMMETRIC, key=SIGNS)
    add(
        "S3 requests (each digest's body and signed checkpoint, locked; the head's body read)",
        s3_put_requests(requests),
        S3_PUT,
        key=CHECKPOINT_PUTS,
    )
    function = next(iter(facts.functions.values()))
    for found in facts.functions.values():
        if found.logical_id == seal.function.logical_id:
            function = found
    waits_ms = latency_scale * sum(
        count.requests * CALL_LATENCY_MS.get(operation.split(":")[0], 0.0)
        for operation, count in seal.requests.items()
        if not operation.startswith("lambda:")
    )
    gb_per_ms = function.memory_mb / 1024 / 1000
    add("Lambda requests", seal.function.invocations, LAMBDA_REQUEST, key=SEALER_INVOCATIONS)
    # Two lines: the handler's CPU grows with the records; the waits on AWS calls are paid per
    # invocation (one digest, one Sign, its objects), whatever the batch holds.
    cpu_ms = sum(math.ceil(cpu) for cpu in seal.function.cpu_ms)
    add(
        f"Lambda duration, handler CPU ({function.architecture}, {function.memory_mb} MB)",
        cpu_ms * gb_per_ms,
        LAMBDA_GB_SECOND[function.architecture],
        upper_units=measured_ms(seal.function) * gb_per_ms,
        key=SEALER_CPU,
    )
    add(
        "Lambda duration, waits on its AWS calls (modelled)",
        waits_ms * gb_per_ms,
        LAMBDA_GB_SECOND[function.architecture],
        key=SEALER_WAITS,
    )
    captured, platform = function_log_bytes(seal.function, function)
    for component, units, price in log_lines("sealer", captured, platform, function):
        add(component.replace(": sealer", ""), units, price, key=SEALER_LOGS)
    return lines


def s3_put_requests(requests: dict[str, OperationCount]) -> int:
    """The S3 requests billed at the PUT tier: PutObject where the emulator names it, else
    every S3 request it counted (it names S3's REST operations ``s3:*``): the high side, as a
    GET costs less than a PUT."""
    named = _count(requests, "s3:PutObject")[0]
    return named if named else _count(requests, "s3:*")[0]


def log_lines(
    role: str, captured: int, platform: int, function: FunctionFacts
) -> list[tuple[str, float, Price]]:
    """(component, bytes, price) of a function's CloudWatch Logs: ingestion of the bytes its
    code wrote and of Lambda's own lines, and the data protection scan of both when its log
    group has a policy."""
    both = captured + platform
    found: list[tuple[str, float, Price]] = [
        (
            f"CloudWatch Logs ingestion: {role} ({captured:,} B captured + {platform:,} B "
            "Lambda's own lines, modelled)",
            both,
            CLOUDWATCH_LOGS_INGESTION,
        )
    ]
    if function.data_protection:
        found.append(
            (
                f"CloudWatch Logs data protection scan: {role}",
                both,
                CLOUDWATCH_LOGS_DATA_PROTECTION,
            )
        )
    return found


def total(lines: list[CostLine], *, audit_only: bool = True, upper: bool = False) -> float:
    """USD per million audited events: the audit pipeline's, or with the publisher's too;
    modelled, or with the emulator's measured durations (``upper``)."""
    return sum(
        (line.upper if upper else line.usd_per_million)
        for line in lines
        if line.audit or not audit_only
    )


def integrity_total(lines: list[CostLine]) -> float:
    """USD per million events of the integrity chain: the sealer's share (and the writer key's
    reads, cached by the functions)."""
    return sum(line.usd_per_million for line in lines if line.integrity)


# The goal for the integrity chain's own cost at full batches (issue 16, item 7).
INTEGRITY_GOAL_PER_MILLION = 0.03
# A DynamoDB-stream event source hands the sealer at most this many records per invocation (the
# construct's batch size, Lambda's maximum for a stream), and at most Lambda's 6 MB payload.
STREAM_BATCH_MAX_RECORDS = 10_000
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024


def full_stream_batch(seal: SealRun) -> int:
    """Records in a full stream batch: 10,000, or fewer when Lambda's 6 MB payload fills first
    at the run's measured bytes per stream record."""
    if not seal.records_sealed or not seal.payload_bytes:
        return STREAM_BATCH_MAX_RECORDS
    per_record = seal.payload_bytes / seal.records_sealed
    return max(1, min(STREAM_BATCH_MAX_RECORDS, int(LAMBDA_PAYLOAD_BYTES / per_record)))


def at_full_stream_batch(lines: list[CostLine], seal: SealRun) -> list[CostLine]:
    """``lines`` with the sealer's per-invocation lines (its digest write, KMS Sign, S3 objects,
    head query, request, waits and log lines: ``PER_BATCH_KEYS``) spread over a full stream
    batch instead of the run's own batches; every other line as measured."""
    invocations = seal.function.invocations or 1
    measured = seal.records_sealed / invocations
    factor = min(1.0, measured / full_stream_batch(seal))
    return [
        replace(
            line,
            units_per_event=line.units_per_event * factor,
            usd_per_million=line.usd_per_million * factor,
            usd_per_million_upper=(
                None if line.usd_per_million_upper is None else line.usd_per_million_upper * factor
            ),
        )
        if line.integrity and line.key in PER_BATCH_KEYS
        else line
        for line in lines
    ]
