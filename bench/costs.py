"""Public us-east-1 prices and the cost per million audited events computed from counted requests.

Prices are list prices after the free tiers, first volume tier. Each names where it was read and
when; re-check them at the official pages (aws.amazon.com/<service>/pricing/) before quoting.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.configurations import TemplateFacts
from bench.load import LoadResult

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
    "SNS standard topic: Publish (per 64 KB chunk); deliveries to SQS carry no SNS charge",
    0.50 / MILLION,
    "request",
    "https://www.factualminds.com/blog/amazon-sns-pricing-publishes-fanout-protocols/ (2026-06); "
    "https://www.deepakkarkala.com/playbooks/aws-for-mlops/async_event_driven/sns",
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
    "DynamoDB on-demand: read request unit (4 KB; unused: the pipeline never reads)",
    0.125 / MILLION,
    "RRU",
    "https://airbyte.com/data-engineering-resources/dynamodb-pricing (after the Nov 2024 cut)",
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
    LAMBDA_REQUEST,
    *LAMBDA_GB_SECOND.values(),
)
# The least this architecture can cost: one SNS publish and one 1-WRU DynamoDB write per event.
FLOOR_PER_MILLION = (SNS_PUBLISH.usd + DYNAMODB_WRITE.usd) * MILLION


@dataclass(frozen=True)
class CostLine:
    """One component of the cost per million audited events.

    :param audit: part of the audit pipeline (SNS publish onwards, the floor's scope); the
        publisher function's own invocation is the application's (the original's deleteAccount
        deletes the account) and is listed beside it.
    """

    component: str
    units_per_event: float
    usd_per_million: float
    audit: bool = True


def _count(result: LoadResult, operation: str) -> tuple[int, int]:
    """(requests, billed requests) of one operation in the run."""
    found = result.requests.get(operation)
    return (found.requests, found.billed_requests) if found else (0, 0)


def cost_per_million(result: LoadResult, facts: TemplateFacts) -> list[CostLine]:
    """The cost of one million audited events at the run's measured request mix.

    Not counted: the event source's empty receives (the emulator's pollers receive whenever
    something changes; on AWS the pollers long-poll, a cost per hour of idle time rather than
    per event), CloudWatch Logs and X-Ray, KMS requests, storage.
    """
    if result.recorded == 0:
        raise ValueError("nothing was recorded: no cost per audited event")
    per_million = MILLION / result.recorded
    lines: list[CostLine] = []

    def add(component: str, units: float, price: Price, *, audit: bool = True) -> None:
        lines.append(
            CostLine(component, units / result.recorded, units * price.usd * per_million, audit)
        )

    publishes, billed_publishes = _count(result, "sns:Publish")
    add("SNS Publish", billed_publishes, SNS_PUBLISH)
    # SNS puts each published event into the subscribed queue: counted as one SQS request
    # (conservatively; it is not an HTTP request in the emulator, so it is derived here).
    add("SQS SendMessage by the SNS subscription", publishes, SQS_REQUEST)
    receive = result.requests.get("sqs:ReceiveMessage")
    nonempty_receives = (receive.requests - receive.empty_receives) if receive else 0
    add("SQS ReceiveMessage with messages (event source)", nonempty_receives, SQS_REQUEST)
    deletes = sum(
        _count(result, operation)[1]
        for operation in ("sqs:DeleteMessageBatch", "sqs:DeleteMessage")
    )
    add("SQS DeleteMessage(Batch) (event source)", deletes, SQS_REQUEST)
    put = result.requests.get("dynamodb:PutItem")
    write_units = (put.item_write_units if put else 0) * (1 + facts.global_secondary_indexes)
    add(
        f"DynamoDB write units (table + {facts.global_secondary_indexes} GSI)",
        write_units,
        DYNAMODB_WRITE,
    )
    for logical_id, use in sorted(result.functions.items(), key=lambda item: item[0]):
        function = facts.functions[logical_id]
        role = "publisher" if logical_id == result.publisher else "recorder"
        audit = role == "recorder"
        add(f"Lambda requests: {role}", use.invocations, LAMBDA_REQUEST, audit=audit)
        gb_seconds = use.billed_ms / 1000 * function.memory_mb / 1024
        add(
            f"Lambda duration: {role} ({function.architecture}, {function.memory_mb} MB)",
            gb_seconds,
            LAMBDA_GB_SECOND[function.architecture],
            audit=audit,
        )
    return lines


def total(lines: list[CostLine], *, audit_only: bool = True) -> float:
    """USD per million audited events: the audit pipeline's, or with the publisher's too."""
    return sum(line.usd_per_million for line in lines if line.audit or not audit_only)
