"""Recorded exchanges: one model call and the provider's answer, stored as a JSON file.

A recording is one JSON object per file (`*.json`; any file name). Fields, all camelCase:

```json
{
  "format": 1,
  "provider": "anthropic",
  "model": "claude-sonnet-4-6",
  "key": "9f2c…",
  "request": {"systemPrompt": "You are…", "userMessage": "Summarise…", "maxTokens": 4096},
  "response": { …the provider's own response body… }
}
```

- `provider`: `anthropic`, `openai` or `ollama`; `model`: the provider's own model name (for Ollama
  without `ollama/`, e.g. `llama3.2`), exactly what the worker sends.
- The matching key is `key`: the SHA-256 hex digest of the compact JSON, keys sorted, of
  `{"maxTokens": int, "systemPrompt": str|null, "userMessage": str}` (see `request_key`). Provider
  and model are matched as fields of their own, so the same prompt may be recorded for two models.
  `request` is optional: when present it must hash to `key` (or `key` may be left out and is then
  computed from it). Leave `request` out to keep prompt text out of the file.
- A recording with neither `key` nor `request` is the model's **default**: it answers every call to
  that provider and model that has no exact recording, so any job gets an answer.
- `response` is the provider's real response body: an Anthropic Messages API `message` object, an
  OpenAI `chat.completion` object, or an Ollama `/api/chat` non-streamed body. Text, stop reason and
  usage are derived from it by the real providers' own parsing, so a recording bills exactly what the
  live call billed.
- Instead of `response`, a recording may hold `error`: the failure as the provider adapter
  classified it, `{"code": "provider_bad_request", "message": "…", "retryable": false,
  "retryAfter": null, "usage": null}` (`usage` in the result's camelCase shape when the provider
  reported some before failing). Replaying it raises the same `ProviderError`.

`agent-worker replay --record DIR` (and `demo --live --record DIR`) write recordings in this format.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from worker.contract import ErrorCode, usage_from_wire, usage_to_wire
from worker.providers.base import ProviderError, ProviderRequest

__all__ = [
    "FORMAT_VERSION",
    "RecordedFailure",
    "RecordedRequest",
    "Recording",
    "RecordingError",
    "read_recording",
    "request_key",
    "write_recording",
]

FORMAT_VERSION: Literal[1] = 1


class RecordingError(ValueError):
    """A recording file that cannot be used; the message names the file and the fault."""


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class RecordedRequest(_Wire):
    system_prompt: str | None = Field(None, alias="systemPrompt")
    user_message: str = Field(alias="userMessage")
    max_tokens: int = Field(alias="maxTokens", ge=1)

    @classmethod
    def of(cls, request: ProviderRequest) -> RecordedRequest:
        return cls(
            system_prompt=request.system_prompt, user_message=request.user_message, max_tokens=request.max_tokens
        )


class _RecordedUsage(_Wire):
    input_tokens: int = Field(0, alias="inputTokens", ge=0)
    output_tokens: int = Field(0, alias="outputTokens", ge=0)
    cache_creation_input_tokens: int = Field(0, alias="cacheCreationInputTokens", ge=0)
    cache_read_input_tokens: int = Field(0, alias="cacheReadInputTokens", ge=0)


class RecordedFailure(_Wire):
    code: ErrorCode
    message: str
    retryable: bool
    retry_after: float | None = Field(None, alias="retryAfter", ge=0)
    usage: _RecordedUsage | None = None

    def to_error(self) -> ProviderError:
        usage = None if self.usage is None else usage_from_wire(self.usage.model_dump(by_alias=True))
        return ProviderError(
            self.code, self.message, retryable=self.retryable, retry_after=self.retry_after, usage=usage
        )

    @classmethod
    def of(cls, error: ProviderError) -> RecordedFailure:
        usage = error.usage
        return cls(
            code=error.code,
            message=error.message,
            retryable=error.retryable,
            retry_after=error.retry_after,
            usage=None if usage is None else _RecordedUsage.model_validate(usage_to_wire(usage)),
        )


class Recording(_Wire):
    format: Literal[1] = FORMAT_VERSION
    provider: Literal["anthropic", "ollama", "openai"]
    model: str = Field(min_length=1)
    key: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    request: RecordedRequest | None = None
    response: dict[str, Any] | None = None
    error: RecordedFailure | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Recording:
        if (self.response is None) == (self.error is None):
            raise ValueError("a recording holds exactly one of `response` and `error`")
        if self.request is not None and self.key is not None and self.key != _digest(self.request):
            raise ValueError(f"`key` {self.key} is not the hash of `request` ({_digest(self.request)})")
        return self

    @property
    def match_key(self) -> str | None:
        """The key this recording answers, or None for the model's default recording."""
        if self.key is not None:
            return self.key
        return None if self.request is None else _digest(self.request)


def _digest(request: RecordedRequest) -> str:
    canonical = orjson.dumps(request.model_dump(by_alias=True), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def request_key(request: ProviderRequest) -> str:
    """The matching key of a call: SHA-256 of its system prompt, user message and max tokens."""
    return _digest(RecordedRequest.of(request))


def read_recording(path: Path) -> Recording:
    try:
        return Recording.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror}") from exc
    except ValidationError as exc:
        faults = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise RecordingError(f"{path}: not a recording: {faults}") from exc


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def write_recording(directory: Path, recording: Recording) -> Path:
    """Write `recording` as `<provider>-<model>-<key prefix>.json` (or `…-default.json`); returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    key = recording.match_key
    suffix = "default" if key is None else key[:16]
    name = _UNSAFE.sub("_", f"{recording.provider}-{recording.model}-{suffix}") + ".json"
    path = directory / name
    body = orjson.dumps(recording.model_dump(mode="json", by_alias=True, exclude_none=True), option=orjson.OPT_INDENT_2)
    path.write_bytes(body + b"\n")
    return path
