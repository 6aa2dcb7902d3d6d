"""The wire contract's constants, each written once: subjects, streams, buckets, headers, codes and reasons.

Everything here is fixed by docs/contract.md (the section is named beside each group); what ops may override
(`WORKER_JOBS_STREAM`, `WORKER_SUBJECTS`, ...) takes these as its defaults in `worker.settings`. A rule about
these values (how a job is read, when a result is stored) lives with the code that applies it, not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Final, Protocol

from catalog import Usage

__all__ = [
    "ADVISORIES_STREAM",
    "CONSUMER",
    "DLQ_DETAIL_HEADER",
    "DLQ_ORIGINAL_SUBJECT_HEADER",
    "DLQ_REASON_HEADER",
    "DLQ_STREAM",
    "DLQ_STREAM_SEQ_HEADER",
    "DLQ_SUBJECT",
    "DLQ_TRUNCATED_HEADER",
    "EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER",
    "JOBS_STREAM",
    "JOBS_STREAM_SUBJECTS",
    "JOB_SUBJECT",
    "MSG_ID_HEADER",
    "OWN_SUBJECT_PREFIXES",
    "REPLY_PREFIX",
    "RESULTS_STREAM",
    "RESULTS_STREAM_SUBJECTS",
    "RESULTS_SUBJECT_PREFIX",
    "SIGNATURE_HEADER",
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "USAGE_BUCKET",
    "USAGE_FIELDS",
    "WORKER_INBOX_PREFIX",
    "DlqReason",
    "ErrorCode",
    "usage_from_wire",
    "usage_to_wire",
]

# §1 NATS topology.
JOBS_STREAM: Final = "MASCHINA_JOBS"
JOBS_STREAM_SUBJECTS: Final = "maschina.jobs.>"
JOB_SUBJECT: Final = "maschina.jobs.agent.agent.execute"
"""Where the API publishes each job (§2), and the subject the worker consumes by default."""
CONSUMER: Final = "agent-worker"
"""The durable pull consumer every replica shares."""
RESULTS_STREAM: Final = "MASCHINA_RESULTS"
RESULTS_STREAM_SUBJECTS: Final = "maschina.results.>"
RESULTS_SUBJECT_PREFIX: Final = "maschina.results.agent.execute."
"""A run's one result record is stored at this prefix + its runId (§6)."""
DLQ_STREAM: Final = "MASCHINA_DLQ"
DLQ_SUBJECT: Final = "maschina.dlq.agent.execute"
ADVISORIES_STREAM: Final = "MASCHINA_JOBS_ADVISORIES"
"""The worker's own stream keeping the server's max-deliveries advisories until a replica handles them (§7;
named in docs/contract.md, For ops)."""
USAGE_BUCKET: Final = "MASCHINA_USAGE"
"""The key-value bucket of monthly usage, when quotas are on (§9)."""
REPLY_PREFIX: Final = "_INBOX."
"""The default prefix a job's `replyTo` may start with (§2)."""
OWN_SUBJECT_PREFIXES: Final = ("maschina.", "$")
"""Our own subjects and the server's API: no allowed reply prefix may lie under them (§2)."""
WORKER_INBOX_PREFIX: Final = "_AW_INBOX"
"""The worker's own request inboxes (PubAcks, lookups, pulled jobs) live under this prefix + `.`, outside every
allowed reply prefix, so no job's replyTo can reach them (§1); a reply prefix covering it is refused at start-up."""

# §2 the job message: the only headers that carry meaning.
SIGNATURE_HEADER: Final = "Maschina-Signature"
TRACEPARENT_HEADER: Final = "traceparent"
TRACESTATE_HEADER: Final = "tracestate"

# §6 the result record: one per run, refused by the server when the run already has one.
MSG_ID_HEADER: Final = "Nats-Msg-Id"
EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER: Final = "Nats-Expected-Last-Subject-Sequence"

# §7 dead letters.
DLQ_REASON_HEADER: Final = "Maschina-Dlq-Reason"
DLQ_DETAIL_HEADER: Final = "Maschina-Dlq-Detail"
DLQ_ORIGINAL_SUBJECT_HEADER: Final = "Maschina-Original-Subject"
DLQ_STREAM_SEQ_HEADER: Final = "Maschina-Stream-Seq"
DLQ_TRUNCATED_HEADER: Final = "Maschina-Dlq-Truncated"


class ErrorCode(StrEnum):
    """Every error code a result may carry (§6)."""

    INVALID_JOB = "invalid_job"
    UNKNOWN_TIER = "unknown_tier"
    UNKNOWN_MODEL = "unknown_model"
    MODEL_NOT_ALLOWED = "model_not_allowed"
    INPUT_TOO_LARGE = "input_too_large"
    QUOTA_EXCEEDED = "quota_exceeded"
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"
    PROVIDER_AUTH = "provider_auth"
    PROVIDER_BAD_REQUEST = "provider_bad_request"
    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_ERROR = "provider_error"
    TIMEOUT = "timeout"
    RESULT_TOO_LARGE = "result_too_large"
    MAX_DELIVERIES_EXCEEDED = "max_deliveries_exceeded"


class DlqReason(StrEnum):
    """Every reason a job may be dead-lettered for (`Maschina-Dlq-Reason`, §7)."""

    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    NO_RUN_ID = "no_run_id"
    BAD_RUN_ID = "bad_run_id"
    BAD_SIGNATURE = "bad_signature"
    MAX_DELIVERIES_EXCEEDED = "max_deliveries_exceeded"


# §5/§6 a result's `usage`: wire name → the `catalog.Usage` field it mirrors.
USAGE_FIELDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "inputTokens": "input_tokens",
        "outputTokens": "output_tokens",
        "cacheCreationInputTokens": "cache_creation_input_tokens",
        "cacheReadInputTokens": "cache_read_input_tokens",
    }
)


class _Counts(Protocol):
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cache_creation_input_tokens(self) -> int: ...
    @property
    def cache_read_input_tokens(self) -> int: ...


# Read in one C call rather than a `getattr` per field: every result is built and written with these.
_USAGE_WIRE_NAMES = tuple(USAGE_FIELDS)
_usage_counts = attrgetter(*USAGE_FIELDS.values())


def usage_to_wire(usage: _Counts) -> dict[str, int]:
    """A result's `usage` object: `{"inputTokens": ..., ...}`, every field present."""
    return dict(zip(_USAGE_WIRE_NAMES, map(int, _usage_counts(usage)), strict=True))


def usage_from_wire(data: Mapping[str, Any]) -> Usage:
    """The token counts of a result's `usage` object (a stored result read back)."""
    return Usage(**{field: int(data[wire]) for wire, field in USAGE_FIELDS.items()})
