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
from dataclasses import dataclass

from audit_stack.local import OperationCount
from bench.configurations import CriticalPath, TemplateFacts
from bench.load import FunctionUse, SealRun, Usage

PRICES_TAKEN_ON = "2026-11-29"
MILLION = 1_000_000


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
ALL_PRICES = (
    SNS_PUBLISH,
    SQS_REQUEST,
    DYNAMODB_WRITE,
    DYNAMODB_READ,
    KMS_ASYMMETRIC,
    SECRETS_MANAGER_CALL,
    LAMBDA_REQUEST,
    *LAMBDA_GB_SECOND.values(),
)
# The least this architecture can cost per event: one SNS publish, the SQS send of its
# delivery, one 1-WRU DynamoDB write. Receives, deletes and invocations amortise over batches.
FLOOR_PER_MILLION = (SNS_PUBLISH.usd + SQS_REQUEST.usd + DYNAMODB_WRITE.usd) * MILLION

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


@dataclass(frozen=True)
class CostLine:
    """One component of the cost per million audited events.

    :param audit: part of the audit pipeline (SNS publish onwards, the floor's scope); the
        publisher function's own invocation is the application's (the seed's deleteAccount
        deletes the account) and is listed beside it.
    :param usd_per_million_upper: the same with the emulator-measured duration (duration lines
        only; the other lines are exact and equal in both columns).
    """

    component: str
    units_per_event: float
    usd_per_million: float
    audit: bool = True
    usd_per_million_upper: float | None = None

    @property
    def upper(self) -> float:
        """The line with the emulator-measured duration (exact lines: the same figure)."""
        if self.usd_per_million_upper is None:
            return self.usd_per_million
        return self.usd_per_million_upper


def recorder_wait_ms(batch_size: int, path: CriticalPath, scale: float = 1.0) -> float:
    """Modelled time a recorder invocation waits on AWS for a batch of ``batch_size``."""
    rounds = math.ceil(batch_size / path.concurrent_writes) if batch_size else 0
    return scale * (
        rounds * CALL_LATENCY_MS["dynamodb"] + path.notice_sends * CALL_LATENCY_MS["sqs"]
    )


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

    Not counted: the event source's empty receives (on AWS the pollers long-poll: a cost per
    hour of idle time, not per event), CloudWatch Logs and metrics, X-Ray, storage, the KMS
    requests of SQS/SNS server-side encryption (data keys are reused for 5 minutes), monthly
    key and secret charges.
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
    ) -> None:
        lines.append(
            CostLine(
                component,
                units / result.recorded,
                units * price.usd * per_million,
                audit,
                None if upper_units is None else upper_units * price.usd * per_million,
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
    notices = _count(requests, "sqs:SendMessage")[1]
    if notices:
        add("SQS SendMessage: seal notices (one per recorder batch)", notices, SQS_REQUEST)
    put = result.requests.get("dynamodb:PutItem")
    write_units = (put.item_write_units if put else 0) * (1 + facts.global_secondary_indexes)
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

    def add(component: str, units: float, price: Price, upper_units: float | None = None) -> None:
        lines.append(
            CostLine(
                f"sealer: {component}",
                units / recorded,
                units * price.usd * per_million,
                True,
                None if upper_units is None else upper_units * price.usd * per_million,
            )
        )

    sqs_requests = sum(
        count.billed_requests - (count.empty_receives if operation == "sqs:ReceiveMessage" else 0)
        for operation, count in seal.requests.items()
        if operation.startswith("sqs:")
    )
    add("SQS receive and delete of seal notices", sqs_requests, SQS_REQUEST)
    # Every sealed record is read back strongly consistent: one RRU per item up to 4 KB (the
    # items are far smaller), plus the chain-head queries.
    head_reads = _count(requests, "dynamodb:Query")[0]
    add(
        "DynamoDB read units (read-back, strongly consistent)",
        seal.records_sealed + head_reads,
        DYNAMODB_READ,
    )
    digest_put = seal.requests.get("dynamodb:PutItem")
    add(
        "DynamoDB write units (digests)",
        digest_put.item_write_units if digest_put else 0,
        DYNAMODB_WRITE,
    )
    add("KMS Sign (one per digest)", _count(requests, "kms:Sign")[0], KMS_ASYMMETRIC)
    function = next(iter(facts.functions.values()))
    for found in facts.functions.values():
        if found.logical_id == seal.function.logical_id:
            function = found
    waits = [
        latency_scale
        * sum(
            count.requests * CALL_LATENCY_MS.get(operation.split(":")[0], 0.0)
            for operation, count in seal.requests.items()
            if not operation.startswith("lambda:")
        )
    ]
    gb_per_ms = function.memory_mb / 1024 / 1000
    add("Lambda requests", seal.function.invocations, LAMBDA_REQUEST)
    add(
        f"Lambda duration ({function.architecture}, {function.memory_mb} MB)",
        modelled_ms(seal.function, waits) * gb_per_ms,
        LAMBDA_GB_SECOND[function.architecture],
        upper_units=measured_ms(seal.function) * gb_per_ms,
    )
    return lines


def total(lines: list[CostLine], *, audit_only: bool = True, upper: bool = False) -> float:
    """USD per million audited events: the audit pipeline's, or with the publisher's too;
    modelled, or with the emulator's measured durations (``upper``)."""
    return sum(
        (line.upper if upper else line.usd_per_million)
        for line in lines
        if line.audit or not audit_only
    )
