"""The result message (docs/contract.md §6): the run's one billing record, in its exact camelCase shape."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from catalog import Bill, Usage, multiplier_text
from worker.contract import ErrorCode, usage_from_wire, usage_to_wire

__all__ = ["ResultBilling", "ResultError", "ResultUsage", "RunResult", "Status"]

Status = Literal["completed", "rejected", "failed", "timed_out"]


class _Wire(BaseModel):
    # Every field is always written (docs/contract.md §6), so the schema marks fields with defaults required too.
    model_config = ConfigDict(
        frozen=True, populate_by_name=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


class ResultUsage(_Wire):
    input_tokens: int = Field(0, alias="inputTokens")
    output_tokens: int = Field(0, alias="outputTokens")
    cache_creation_input_tokens: int = Field(0, alias="cacheCreationInputTokens")
    cache_read_input_tokens: int = Field(0, alias="cacheReadInputTokens")

    @classmethod
    def of(cls, usage: Usage) -> ResultUsage:
        return cls.model_validate(usage_to_wire(usage))

    def counts(self) -> Usage:
        """The provider's counts again, for arithmetic (`raw_input`, billing)."""
        return usage_from_wire(self.wire())

    def wire(self) -> dict[str, Any]:
        return usage_to_wire(self)


class ResultBilling(_Wire):
    multiplier: Decimal = Decimal(0)
    billed_input_tokens: int = Field(0, alias="billedInputTokens")
    billed_output_tokens: int = Field(0, alias="billedOutputTokens")
    billed_tokens: int = Field(0, alias="billedTokens")

    @field_serializer("multiplier")
    def _multiplier_as_string(self, value: Decimal) -> str:
        # A JSON string keeps the decimal exact for every reader.
        return multiplier_text(value)

    @classmethod
    def of(cls, bill: Bill) -> ResultBilling:
        return cls(
            multiplier=bill.multiplier,
            billed_input_tokens=bill.input_tokens,
            billed_output_tokens=bill.output_tokens,
            billed_tokens=bill.total,
        )

    def wire(self) -> dict[str, Any]:
        return {
            "multiplier": multiplier_text(self.multiplier),
            "billedInputTokens": self.billed_input_tokens,
            "billedOutputTokens": self.billed_output_tokens,
            "billedTokens": self.billed_tokens,
        }


class ResultError(_Wire):
    code: ErrorCode
    message: str
    retryable: bool

    def wire(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, "retryable": self.retryable}


class RunResult(_Wire):
    version: Literal[1] = 1
    type: Literal["agent.execute.result"] = "agent.execute.result"
    job_id: str | None = Field(alias="jobId")
    run_id: str = Field(alias="runId")
    agent_id: str | None = Field(alias="agentId")
    user_id: str | None = Field(alias="userId")
    tier: str | None
    status: Status
    requested_model: str | None = Field(alias="requestedModel")
    model: str | None
    provider: str | None
    output_payload: dict[str, Any] | None = Field(alias="outputPayload")
    stop_reason: str | None = Field(alias="stopReason")
    usage: ResultUsage = ResultUsage()
    billing: ResultBilling = ResultBilling()
    error: ResultError | None
    attempt: int
    worker_id: str = Field(alias="workerId")
    started_at: datetime = Field(alias="startedAt")
    finished_at: datetime = Field(alias="finishedAt")
    duration_ms: int = Field(alias="durationMs")

    @field_serializer("started_at", "finished_at")
    def _iso_millis_utc(self, value: datetime) -> str:
        return _iso_millis_utc(value)

    def to_json(self) -> bytes:
        # Built by hand rather than with `model_dump`, which costs several times more on every job; the
        # bytes are the same (the golden tests compare them), and the model still defines the schema.
        fields: dict[str, Any] = {
            "version": self.version,
            "type": self.type,
            "jobId": self.job_id,
            "runId": self.run_id,
            "agentId": self.agent_id,
            "userId": self.user_id,
            "tier": self.tier,
            "status": self.status,
            "requestedModel": self.requested_model,
            "model": self.model,
            "provider": self.provider,
            "outputPayload": self.output_payload,
            "stopReason": self.stop_reason,
            "usage": self.usage.wire(),
            "billing": self.billing.wire(),
            "error": self.error.wire() if self.error is not None else None,
            "attempt": self.attempt,
            "workerId": self.worker_id,
            "startedAt": _iso_millis_utc(self.started_at),
            "finishedAt": _iso_millis_utc(self.finished_at),
            "durationMs": self.duration_ms,
        }
        try:
            return orjson.dumps(fields)
        except orjson.JSONEncodeError:
            # Only an integer beyond 64 bits gets here (a bill under a huge catalog multiplier): the standard
            # library writes it exactly, in the same compact form, rather than the job failing on every delivery.
            return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()

    def too_large(self, size: int, limit: int) -> RunResult:
        """The run's record when this result cannot be stored (docs/contract.md §6, `result_too_large`).

        Usage and billing stay as they are: the provider's tokens were spent. Not retryable: running the
        job again would only produce another result of the same size.
        """
        message = f"The result is {size} bytes, above the NATS server's limit of {limit} bytes per message."
        error = ResultError(code=ErrorCode.RESULT_TOO_LARGE, message=message, retryable=False)
        return self.model_copy(update={"status": "failed", "output_payload": None, "stop_reason": None, "error": error})

    @classmethod
    def from_json(cls, body: bytes) -> RunResult:
        return cls.model_validate_json(body)


def _iso_millis_utc(value: datetime) -> str:
    """`2026-03-08T12:00:00.120Z`: the wall time as given (UTC by the pipeline's clock), milliseconds truncated.

    Its first 23 characters are the date and time whatever the offset (the year always has four digits): cut
    there rather than through a naive copy of `value`, which cost a third more on both timestamps of every result.
    """
    return value.isoformat(timespec="milliseconds")[:23] + "Z"
