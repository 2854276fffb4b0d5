"""The pipeline's data contract: every name that two parts must spell alike (stdlib only).

The construct (table keys, index, alarms), the handlers (what they write and emit), the CLI and
the emulator (what they read) and the tests import these names from here; nothing else spells
them. Renaming one here renames it everywhere, so an alarm can never watch a metric that no
handler emits any more.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACCOUNT_DELETED",
    "ACTOR_ATTRIBUTE",
    "ANCHOR_PREFIX",
    "CLOCK_MARGIN_SECONDS",
    "DETAILS_ATTRIBUTE",
    "DIGEST_BODY_ATTRIBUTE",
    "DIGEST_BODY_OBJECT_ATTRIBUTE",
    "DIGEST_CHECKPOINT_ATTRIBUTE",
    "DIGEST_HASH_ATTRIBUTE",
    "DIGEST_PARTITION_KEY",
    "DIGEST_RECORD_COUNT_ATTRIBUTE",
    "DIGEST_SEALED_AT_ATTRIBUTE",
    "DIGEST_SIGNATURE_ATTRIBUTE",
    "DIGEST_SORT_KEY",
    "ENV_ANCHOR_BUCKET",
    "ENV_ANCHOR_RETENTION_DAYS",
    "ENV_DIGEST_TABLE_NAME",
    "ENV_EVENT_CATALOGUE",
    "ENV_EVENT_TYPE_INDEX_SHARDS",
    "ENV_HEARTBEAT_SECONDS",
    "ENV_PSEUDONYM_SECRET_ARN",
    "ENV_RETENTION_DAYS",
    "ENV_SEAL_INTERVAL_SECONDS",
    "ENV_SIGNING_KEY_ARN",
    "ENV_SOURCE",
    "ENV_SUBJECT_IN_CLEAR",
    "ENV_TABLE_NAME",
    "ENV_TOPIC_ARN",
    "ENV_WRITER_KEY_SECRET_ARN",
    "EVENT_ID_ATTRIBUTE",
    "EVENT_TYPE_ATTRIBUTE",
    "EVENT_TYPE_INDEX",
    "EVENT_TYPE_PATTERN",
    "EVENT_TYPE_SHARD_ATTRIBUTE",
    "EXPIRES_AT_ATTRIBUTE",
    "IDEMPOTENCY_MARKER_PREFIX",
    "IDEMPOTENCY_MARKER_SORT_KEY",
    "IDEMPOTENT_ATTRIBUTE",
    "MAX_CATALOGUE_BYTES",
    "MAX_DETAILS_BYTES",
    "METRICS_NAMESPACE",
    "METRIC_DIGESTS_WRITTEN",
    "METRIC_DUPLICATES_SKIPPED",
    "METRIC_EVENTS_RECORDED",
    "METRIC_POISON_MESSAGES",
    "METRIC_RECORDS_SEALED",
    "METRIC_TAMPERED_RECORDS",
    "METRIC_UNVERIFIED_MESSAGES",
    "OCCURRED_AT_ATTRIBUTE",
    "PARTITION_KEY",
    "PERSONAL_ATTRIBUTES",
    "PERSONAL_FIELDS_KEYWORD",
    "RECORDED_AT_ATTRIBUTE",
    "RECORDER_METRICS",
    "RECORD_HASH_ATTRIBUTE",
    "REDACTED_AT_ATTRIBUTE",
    "REDACTED_BY_ATTRIBUTE",
    "REDACTION_EVENT_TYPE",
    "REDACTION_REASON_ATTRIBUTE",
    "REDACTION_SUBJECT",
    "SCHEMA_VERSION",
    "SCHEMA_VERSIONS",
    "SCHEMA_VERSION_ATTRIBUTE",
    "SEALER_METRICS",
    "SEAL_ALREADY_SEALED",
    "SEAL_CHAIN_HEAD",
    "SEAL_DIGESTS_WRITTEN",
    "SEAL_ON_DEMAND",
    "SEAL_RECORDS_SEALED",
    "SEAL_REJECTED",
    "SERVICE_NAME",
    "SNS_MESSAGE_ID_ATTRIBUTE",
    "SORT_KEY",
    "SOURCE_ATTRIBUTE",
    "SUBJECT_IN_CLEAR_ON",
    "SUBJECT_TYPE_ATTRIBUTE",
    "SUBJECT_TYPE_EMAIL",
    "SUBJECT_TYPE_IDENTIFIER",
    "SUBJECT_TYPE_PSEUDONYM",
    "TIMESTAMP_FORMAT",
    "TOPIC_ARN_ATTRIBUTE",
    "WRITER_MAC_ATTRIBUTE",
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
WRITER_MAC_ATTRIBUTE: Final = "writer_mac"
"""HMAC-SHA-256 of the item's record_hash under the writer key, which only the recorder and
the sealer may read (``integrity.writer_mac``): the sealer seals only items that carry it, so an
item put by anyone else (a lifted table policy) is reported, not sealed. Outside the record's
canonical content, like ``record_hash`` itself."""
TOPIC_ARN_ATTRIBUTE: Final = "topic_arn"
"""The ARN of the SNS topic whose signed notification delivered the event (provenance)."""
ACTOR_ATTRIBUTE: Final = "actor"
"""Who did it (optional; a service, an operator, a user's pseudonym), as the producer states."""
EXPIRES_AT_ATTRIBUTE: Final = "expires_at"
"""DynamoDB TTL (epoch seconds) when the pipeline has a retention period; absent otherwise."""
IDEMPOTENCY_MARKER_PREFIX: Final = "idempotency#"
"""A caller idempotency key's marker item: partition ``idempotency#<event id>``."""
IDEMPOTENCY_MARKER_SORT_KEY: Final = "idempotency"

# --- The digest table ----------------------------------------------------------------------
DIGEST_PARTITION_KEY: Final = "chain"
DIGEST_SORT_KEY: Final = "sequence"
# A digest item's attributes: written by the sealer (integrity.digest_item), read by the sealer
# (the chain's head), `audit verify`, `prove` and `checkpoint`.
DIGEST_SEALED_AT_ATTRIBUTE: Final = "sealed_at"
DIGEST_BODY_ATTRIBUTE: Final = "body"
"""The signed digest body (canonical JSON, integrity.Digest.body)."""
DIGEST_HASH_ATTRIBUTE: Final = "digest_hash"
DIGEST_SIGNATURE_ATTRIBUTE: Final = "signature"
DIGEST_RECORD_COUNT_ATTRIBUTE: Final = "record_count"
DIGEST_CHECKPOINT_ATTRIBUTE: Final = "checkpoint"
"""Version 2 and later: the signed RFC 9162 checkpoint's body."""
DIGEST_BODY_OBJECT_ATTRIBUTE: Final = "body_object"
"""Where the body is when it is not in the item: ``<bucket>/<key>`` of a write-once object in
the anchor bucket (``integrity.body_key``); the item's ``digest_hash`` and signed checkpoint
still pin its content. A digest item has ``body`` or ``body_object``, never both."""

# --- The sealer's run report (its response; `audit seal` and the bench read it) -----------
SEAL_DIGESTS_WRITTEN: Final = "digests_written"
SEAL_RECORDS_SEALED: Final = "records_sealed"
SEAL_ON_DEMAND: Final = "audit seal"
"""The ``trigger`` of an on-demand sealer run: a digest now, even an empty one."""
SEAL_ALREADY_SEALED: Final = "already_sealed"
"""Records of the batch that an earlier digest holds (the event source retried the batch)."""
SEAL_REJECTED: Final = "rejected"
SEAL_CHAIN_HEAD: Final = "chain_head"

# --- Function environment (set by the construct, read by the handlers and local tooling) ---
ENV_TABLE_NAME: Final = "TABLE_NAME"
ENV_WRITER_KEY_SECRET_ARN: Final = "WRITER_KEY_SECRET_ARN"
ENV_TOPIC_ARN: Final = "TOPIC_ARN"
"""The publisher's topic; the recorder's one accepted ``TopicArn``."""
ENV_EVENT_TYPE_INDEX_SHARDS: Final = "EVENT_TYPE_INDEX_SHARDS"
ENV_PSEUDONYM_SECRET_ARN: Final = "PSEUDONYM_SECRET_ARN"
ENV_SUBJECT_IN_CLEAR: Final = "SUBJECT_IN_CLEAR"
ENV_DIGEST_TABLE_NAME: Final = "DIGEST_TABLE_NAME"
ENV_SIGNING_KEY_ARN: Final = "SIGNING_KEY_ARN"
ENV_HEARTBEAT_SECONDS: Final = "HEARTBEAT_SECONDS"
ENV_ANCHOR_BUCKET: Final = "ANCHOR_BUCKET_NAME"
"""The S3 bucket (Object Lock, COMPLIANCE) the sealer writes each signed checkpoint to."""
ENV_EVENT_CATALOGUE: Final = "EVENT_CATALOGUE"
"""The pipeline's event types and their details schemas, as compact JSON."""
ENV_RETENTION_DAYS: Final = "RETENTION_DAYS"
"""Days a record is kept (DynamoDB TTL); unset: kept for the life of the table."""

# --- Integrity v2: Merkle checkpoints anchored in S3 Object Lock (docs/INTEGRITY.md) ---------
ANCHOR_PREFIX: Final = "checkpoints/"
"""The anchor bucket's prefix for signed checkpoints: ``checkpoints/<table>/<sequence>.json``;
the sealer may write only below it."""
ENV_ANCHOR_RETENTION_DAYS: Final = "ANCHOR_RETENTION_DAYS"
"""Days each anchored checkpoint stays locked (Object Lock COMPLIANCE, explicit per object)."""
ENV_SEAL_INTERVAL_SECONDS: Final = "SEAL_INTERVAL_SECONDS"
"""How often the sealer runs; with HEARTBEAT_SECONDS it bounds the time between checkpoints."""

# --- Events --------------------------------------------------------------------------------
SCHEMA_VERSION: Final = 3
"""The version the publisher writes."""
SCHEMA_VERSIONS: Final = (1, 2, 3)
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
# --- SNS signature check (integrity v2, part C) ---
METRIC_UNVERIFIED_MESSAGES: Final = "UnverifiedMessages"
"""Messages the recorder refused because SNS did not sign them for its topic (also poison)."""
RECORDER_METRICS: Final = (
    METRIC_EVENTS_RECORDED,
    METRIC_DUPLICATES_SKIPPED,
    METRIC_POISON_MESSAGES,
    METRIC_UNVERIFIED_MESSAGES,
)
"""Everything the recorder emits."""
SEALER_METRICS: Final = (METRIC_RECORDS_SEALED, METRIC_TAMPERED_RECORDS, METRIC_DIGESTS_WRITTEN)
"""Everything the sealer emits."""

# --- Verify that cannot be steered (integrity v2, item 6) ------------------------------------
CLOCK_MARGIN_SECONDS: Final = 300
"""How far the clocks of the recorder, the sealer and ``audit verify`` may differ: the sealer's
duplicate search looks this far behind a record's time, and verify calls a ``recorded_at`` more
than this after its own clock a finding (recorded in the future)."""
# --- Event catalogue (any event type; h4) ---------------------------------------------------
ACCOUNT_DELETED: Final = "AccountDeleted"
"""The original solution's event type: with it in the catalogue, the deleteAccount function."""
SUBJECT_TYPE_IDENTIFIER: Final = "identifier"
"""A subject in clear that is not an e-mail address (an account id, an invoice's customer id)."""
MAX_DETAILS_BYTES: Final = 8192
"""Most bytes of an event's ``details`` as compact UTF-8 JSON: ten such events and their
envelopes stay well inside SNS PublishBatch's 256 KiB for a whole batch, and a record stays a
few DynamoDB write units, far below the 400 KB item limit."""
MAX_CATALOGUE_BYTES: Final = 3072
"""Most bytes of ``EVENT_CATALOGUE``: Lambda allows 4 KB for all of a function's environment
variables together, and the other variables (ARNs, names) need the rest."""
ENV_SOURCE: Final = "AUDIT_EVENT_SOURCE"
"""The ``source`` an ``AuditPublisher.from_environment()`` client gives its events by default."""
# --- Shared item attributes and values (construct structure; r2) ----------------------------
# The recorder writes these attributes (items.py); `audit trail`, `audit events`, `audit dlq`,
# `audit verify` and the emulator read them back.
EVENT_ID_ATTRIBUTE: Final = "event_id"
OCCURRED_AT_ATTRIBUTE: Final = "occurred_at"
SCHEMA_VERSION_ATTRIBUTE: Final = "schema_version"
IDEMPOTENT_ATTRIBUTE: Final = "idempotent"
SOURCE_ATTRIBUTE: Final = "source"
DETAILS_ATTRIBUTE: Final = "details"
SNS_MESSAGE_ID_ATTRIBUTE: Final = "sns_message_id"
SUBJECT_IN_CLEAR_ON: Final = "true"
"""The value of ``SUBJECT_IN_CLEAR`` that records subjects in clear (any other: pseudonyms)."""
# --- Addresses stay home (issue 18 items 4-5; r6) ---------------------------------------------
PERSONAL_FIELDS_KEYWORD: Final = "x-audit-personal-fields"
"""The annotation of a details schema (in ``EVENT_CATALOGUE``) that lists the top-level
``details`` fields holding personal data (``EventType(..., personal_fields=[...])``): the
publisher records them by their keyed pseudonym, and only they may hold an e-mail address."""
# --- Lawful erasure: redaction (issue 18 item 2, r5) -----------------------------------------
REDACTION_EVENT_TYPE: Final = "AuditRecordRedacted"
"""The built-in event type every pipeline records: a redaction, sealed into the chain like any
record. Its details name the redacted record by sort key and hashes only (no personal data)."""
REDACTION_SUBJECT: Final = "audit-log"
"""The subject (an identifier, pseudonymised like any) that redaction entries are recorded
about: the log itself, never the person whose record was redacted."""
REDACTED_AT_ATTRIBUTE: Final = "redacted_at"
REDACTION_REASON_ATTRIBUTE: Final = "redaction_reason"
REDACTED_BY_ATTRIBUTE: Final = "redacted_by"
PERSONAL_ATTRIBUTES: Final = (ACTOR_ATTRIBUTE, DETAILS_ATTRIBUTE)
"""What a redaction removes from a record: everything that can be about a person besides its
key (the pseudonym). What stays: the key, the event's type, time, id, source and provenance,
and ``record_hash``: the fact that an event happened, and the proof of it."""
