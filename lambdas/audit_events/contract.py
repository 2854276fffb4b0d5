"""The pipeline's data contract: every name that two parts must spell alike (stdlib only).

The construct (table keys, index, alarms), the handlers (what they write and emit), the CLI and
the emulator (what they read) and the tests import these names from here; nothing else spells
them. Renaming one here renames it everywhere, so an alarm can never watch a metric that no
handler emits any more.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DIGEST_PARTITION_KEY",
    "DIGEST_SORT_KEY",
    "EVENT_TYPE_ATTRIBUTE",
    "EVENT_TYPE_INDEX",
    "EVENT_TYPE_PATTERN",
    "EVENT_TYPE_SHARD_ATTRIBUTE",
    "IDEMPOTENCY_MARKER_PREFIX",
    "IDEMPOTENCY_MARKER_SORT_KEY",
    "METRICS_NAMESPACE",
    "METRIC_DIGESTS_WRITTEN",
    "METRIC_DUPLICATES_SKIPPED",
    "METRIC_EVENTS_RECORDED",
    "METRIC_POISON_MESSAGES",
    "METRIC_RECORDS_SEALED",
    "METRIC_TAMPERED_RECORDS",
    "PARTITION_KEY",
    "RECORDED_AT_ATTRIBUTE",
    "RECORDER_METRICS",
    "RECORD_HASH_ATTRIBUTE",
    "SCHEMA_VERSION",
    "SCHEMA_VERSIONS",
    "SEALER_METRICS",
    "SERVICE_NAME",
    "SORT_KEY",
    "SUBJECT_TYPE_ATTRIBUTE",
    "SUBJECT_TYPE_EMAIL",
    "SUBJECT_TYPE_PSEUDONYM",
    "TIMESTAMP_FORMAT",
]

# --- The audit table -----------------------------------------------------------------------
PARTITION_KEY: Final = "subject"
"""Whom an event is about: the normalised address, or its keyed pseudonym (the default)."""
SORT_KEY: Final = "event_key"
"""``occurred_at#event_id``: a subject's events in time order; also the index's sort key."""
EVENT_TYPE_INDEX: Final = "by-event-type-shard"
"""The global secondary index of events by type, write-sharded (optional, on by default)."""
EVENT_TYPE_ATTRIBUTE: Final = "event_type"
EVENT_TYPE_SHARD_ATTRIBUTE: Final = "event_type_shard"
"""``<event_type>#<shard>``: the index's partition key."""
SUBJECT_TYPE_ATTRIBUTE: Final = "subject_type"
RECORD_HASH_ATTRIBUTE: Final = "record_hash"
RECORDED_AT_ATTRIBUTE: Final = "recorded_at"
IDEMPOTENCY_MARKER_PREFIX: Final = "idempotency#"
"""A caller idempotency key's marker item: partition ``idempotency#<event id>``."""
IDEMPOTENCY_MARKER_SORT_KEY: Final = "idempotency"

# --- The digest table ----------------------------------------------------------------------
DIGEST_PARTITION_KEY: Final = "chain"
DIGEST_SORT_KEY: Final = "sequence"

# --- Events --------------------------------------------------------------------------------
SCHEMA_VERSION: Final = 2
"""The version the publisher writes."""
SCHEMA_VERSIONS: Final = (1, 2)
"""Every version the recorder and the CLI read."""
SUBJECT_TYPE_EMAIL: Final = "email"
SUBJECT_TYPE_PSEUDONYM: Final = "hmac-sha256"
EVENT_TYPE_PATTERN: Final = "^[A-Z][A-Za-z0-9]{0,63}$"
TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"
"""Fixed width, microseconds, UTC: timestamps sort as text in time order."""

# --- Metrics (Powertools EMF, dimension "service") -----------------------------------------
SERVICE_NAME: Final = "audit-pipeline"
METRICS_NAMESPACE: Final = "AuditPipeline"
METRIC_EVENTS_RECORDED: Final = "AuditEventsRecorded"
METRIC_DUPLICATES_SKIPPED: Final = "DuplicateAuditEventsSkipped"
METRIC_POISON_MESSAGES: Final = "PoisonMessages"
METRIC_RECORDS_SEALED: Final = "AuditRecordsSealed"
METRIC_TAMPERED_RECORDS: Final = "TamperedAuditRecords"
METRIC_DIGESTS_WRITTEN: Final = "AuditDigestsWritten"
RECORDER_METRICS: Final = (
    METRIC_EVENTS_RECORDED,
    METRIC_DUPLICATES_SKIPPED,
    METRIC_POISON_MESSAGES,
)
"""Everything the recorder emits."""
SEALER_METRICS: Final = (METRIC_RECORDS_SEALED, METRIC_TAMPERED_RECORDS, METRIC_DIGESTS_WRITTEN)
"""Everything the sealer emits."""
