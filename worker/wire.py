"""The job as the API publishes it (docs/contract.md §2): the envelope and its `data`, in camelCase.

`JobData` is what the door validates every job's data against (strict JSON types: `300.0`, `true`
and `"300"` are not integers). The envelope models describe the published shape for the JSON Schema;
the door reads the envelope's few fields itself, because a malformed `id` or `timestamp` must not
reject a job. `replyTo` is checked by `reply_to_fault`, since its allowed prefixes are configuration.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_TIMEOUT_SECS",
    "MAX_ECHO_CHARS",
    "MAX_FIELD_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_REPLY_TO_CHARS",
    "MAX_TIMEOUT_SECS",
    "RUN_ID",
    "BareJob",
    "Envelope",
    "JobData",
    "job_body_schema",
    "reply_to_fault",
]

DEFAULT_TIMEOUT_SECS = 300
MAX_TIMEOUT_SECS = 3600
DEFAULT_MAX_TOKENS = 4096
MAX_MESSAGE_CHARS = 100_000
MAX_REPLY_TO_CHARS = 256
#: `agentId`, `userId`, `tier` and `model` are at most this many characters (Unicode code points).
MAX_FIELD_CHARS = 256
#: A result echoes `jobId`, `agentId`, `userId`, `tier` and `requestedModel` only when at most this long
#: (docs/contract.md §6).
MAX_ECHO_CHARS = 256

_RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
_SUBJECT_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
# One pattern each for the schema and the door; with `fullmatch`, `$` cannot accept a trailing newline.
RUN_ID = re.compile(_RUN_ID_PATTERN)
"""A run id is a NATS subject token: match with `fullmatch`."""
_SUBJECT = re.compile(_SUBJECT_PATTERN)

_Timeout = Annotated[int, Field(ge=1, le=MAX_TIMEOUT_SECS)]
_MaxTokens = Annotated[int, Field(ge=1)]
_NonEmpty = Annotated[str, Field(min_length=1, max_length=MAX_FIELD_CHARS)]
_Short = Annotated[str, Field(max_length=MAX_FIELD_CHARS)]
_ReplyTo = Annotated[
    str,
    Field(
        max_length=MAX_REPLY_TO_CHARS,
        pattern=_SUBJECT_PATTERN,
        description=(
            "Subject that also receives a copy of the result. It must start with one of the worker's "
            "WORKER_REPLY_PREFIXES (default `_INBOX.`) and have at least one token after it."
        ),
    ),
]


class _Published(BaseModel):
    # Strict: the JSON type is the contract. Unknown fields are ignored: the publisher adds fields over time.
    # Only the camelCase names are read (no populate_by_name): `run_id` on the wire is an unknown field.
    model_config = ConfigDict(
        strict=True,
        extra="ignore",
        frozen=True,
        field_title_generator=lambda name, _info: name.replace("_", " ").capitalize(),
    )


class JobData(_Published):
    """The job itself: an envelope's `data`, or the whole body of a bare job."""

    type: Literal["agent.execute"] = "agent.execute"
    run_id: str = Field(alias="runId", pattern=_RUN_ID_PATTERN, description="Run id, a NATS subject token.")
    agent_id: _NonEmpty = Field(alias="agentId")
    user_id: _NonEmpty = Field(alias="userId")
    tier: _Short = Field(description="Customer tier; an unknown one is rejected by the gate (unknown_tier).")
    model: _Short | None = Field(None, description="Model id; absent, null or empty means the tier's default.")
    system_prompt: str | None = Field(None, alias="systemPrompt")
    input_payload: dict[str, Any] | None = Field(
        None,
        alias="inputPayload",
        description=(
            "Absent or null means {}. The user message is its `message` when a string, else the compact JSON "
            "of its `message` when present, else of the whole object; at most 100,000 characters."
        ),
    )
    timeout_secs: _Timeout | None = Field(
        DEFAULT_TIMEOUT_SECS,
        alias="timeoutSecs",
        description="Budget of each delivery's attempt, retries included; null means 300.",
    )
    max_tokens: _MaxTokens | None = Field(
        DEFAULT_MAX_TOKENS,
        alias="maxTokens",
        description="Null means 4096; lowered to the model's output cap.",
    )


class BareJob(JobData):
    """A job published without an envelope: `replyTo` is its own top-level field."""

    reply_to: _ReplyTo | None = Field(None, alias="replyTo")


class Envelope(_Published):
    """The event envelope the API publishes; `data` is the job.

    The worker reads nothing else of the envelope but `replyTo` and `id`, so any JSON value is accepted
    for the other fields, and for `id`, which the publisher writes as a string.
    """

    id: JsonValue = Field(None, description="Event id (a string); the result's jobId when a string, else null.")
    timestamp: JsonValue = Field(None, description="When the event was published (ISO 8601); not read.")
    version: JsonValue = Field(None, description="Envelope version (1); not read.")
    subject: JsonValue = Field(None, description="Subject the job was published to; not read.")
    reply_to: _ReplyTo | None = Field(None, alias="replyTo")
    data: JobData


def job_body_schema() -> dict[str, Any]:
    """JSON Schema of a job body as published: an envelope, or a bare job."""
    adapter: TypeAdapter[Envelope | BareJob] = TypeAdapter(Envelope | BareJob)
    return {
        "title": "Job",
        "description": (
            "An agent.execute job: an envelope whose `data` is an object, or else a bare job. "
            "Unknown fields are ignored."
        ),
        **adapter.json_schema(by_alias=True),
    }


def reply_to_fault(value: object, prefixes: tuple[str, ...]) -> str | None:
    """Why `value` (a present, non-null `replyTo`) is not a valid reply subject, or None when it is."""
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > MAX_REPLY_TO_CHARS:
        return f"must be at most {MAX_REPLY_TO_CHARS} characters"
    if _SUBJECT.fullmatch(value) is None:
        return "must be dot-separated non-empty tokens of letters, digits, '_' and '-'"
    for prefix in prefixes:
        # The subject grammar forbids a trailing dot, so being longer than the prefix means a token follows it.
        if value.startswith(prefix) and len(value) > len(prefix):
            return None
    return "must start with " + " or ".join(repr(p) for p in prefixes) + " and have a token after it"
