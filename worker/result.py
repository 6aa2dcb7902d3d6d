"""The result message (contract section 6): the run's one billing record, in its exact camelCase shape."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from catalog import Bill, Usage, multiplier_text
from worker.errors import ErrorCode

__all__ = ["ResultBilling", "ResultError", "ResultUsage", "RunResult", "Status"]

Status = Literal["completed", "rejected", "failed", "timed_out"]


class _Wire(BaseModel):
    # Every field is always written (contract 6), so the schema marks fields with defaults required too.
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
        return cls(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
        )


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


class ResultError(_Wire):
    code: ErrorCode
    message: str
    retryable: bool


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
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))

    @classmethod
    def from_json(cls, body: bytes) -> RunResult:
        return cls.model_validate_json(body)
