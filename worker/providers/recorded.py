"""Providers that answer from recorded exchanges, and a wrapper that records live ones (format: `exchange`).

`RecordedProvider` stands for a real provider (`name` is `anthropic`, `openai` or `ollama`): it looks each
call up by provider, model and request key, falls back to the model's default recording, and
raises `provider_error` naming the model and key when there is neither. Recorded responses are
turned into replies by the real providers' own parsing (`reply_from_body`, `reply_from_completion`,
`parse_chat_answer`),
so a replayed job bills exactly as the live call did.

`RecordingProvider` wraps a live provider and writes every answer, and every non-retryable error,
as a recording; retryable errors are not written, since they say nothing about the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from catalog import PROVIDERS
from worker.contract import ErrorCode
from worker.providers.base import Provider, ProviderError, ProviderReply, ProviderRequest
from worker.providers.completions import FINISH_REASONS, reply_from_completion
from worker.providers.exchange import (
    RecordedFailure,
    RecordedRequest,
    Recording,
    RecordingError,
    read_recording,
    request_key,
    write_recording,
)
from worker.providers.messages import MalformedAnswerError, reply_from_body
from worker.providers.ollama import DONE_REASONS, parse_chat_answer

__all__ = [
    "PACKAGED_RECORDINGS",
    "RecordedProvider",
    "RecordingProvider",
    "RecordingStore",
    "packaged_recordings",
    "recorded_providers",
    "recording_providers",
]

_Answer = ProviderReply | ProviderError
#: What a recorded `response` of each provider must be.
_ANSWER_SHAPES = {"anthropic": "an Anthropic Messages answer", "openai": "an OpenAI Chat Completions answer"}


def _answer_of(recording: Recording, source: str) -> _Answer:
    """What the live provider would have returned or raised for this recording."""
    if recording.error is not None:
        return recording.error.to_error()
    response = recording.response
    assert response is not None  # a Recording holds a response or an error
    try:
        if recording.provider == "anthropic":
            return reply_from_body(response)
        if recording.provider == "openai":
            return reply_from_completion(response)
        return parse_chat_answer(orjson.dumps(response))
    except ProviderError as exc:
        # A well-formed answer the provider adapter refuses (an Ollama `{"error": …}` body): replay the refusal.
        return exc
    except MalformedAnswerError as exc:
        raise RecordingError(f"{source}: `response` is not {_ANSWER_SHAPES[recording.provider]}: {exc}") from exc


class RecordingStore:
    """Recordings by (provider, model, key), plus one default per (provider, model); answers parsed at load."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str, str], _Answer] = {}
        self._defaults: dict[tuple[str, str], _Answer] = {}

    def add(self, recording: Recording, source: str) -> None:
        """Add one recording; a later one for the same call replaces an earlier one."""
        answer = _answer_of(recording, source)
        key = recording.match_key
        if key is None:
            self._defaults[(recording.provider, recording.model)] = answer
        else:
            self._exact[(recording.provider, recording.model, key)] = answer

    def answer(self, provider: str, request: ProviderRequest) -> _Answer:
        key = request_key(request)
        found = self._exact.get((provider, request.model, key)) or self._defaults.get((provider, request.model))
        if found is None:
            return ProviderError(
                ErrorCode.PROVIDER_ERROR,
                f"No recording for {provider} model {request.model} (request key {key}) and no default recording "
                f"for that model; capture one with `agent-worker replay --live --record DIR FILE`.",
                retryable=False,
            )
        return found

    def __len__(self) -> int:
        return len(self._exact) + len(self._defaults)

    @classmethod
    def load(cls, directories: Sequence[Path]) -> RecordingStore:
        """Every `*.json` under each directory, in name order; raises `RecordingError` naming a bad file."""
        store = cls()
        for directory in directories:
            if not directory.is_dir():
                raise RecordingError(f"{directory}: not a directory of recordings")
            for path in sorted(directory.rglob("*.json")):
                store.add(read_recording(path), str(path))
        return store


#: The recordings shipped in the package (package data of `worker`).
PACKAGED_RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"


def packaged_recordings() -> RecordingStore:
    """The recordings shipped in the package, used by `demo` and by `replay` unless given others."""
    return RecordingStore.load([PACKAGED_RECORDINGS])


class RecordedProvider:
    """Answers calls from a `RecordingStore`, standing for the provider named `name`."""

    def __init__(self, name: str, store: RecordingStore) -> None:
        self.name = name
        self._store = store

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        answer = self._store.answer(self.name, request)
        if isinstance(answer, ProviderError):
            # A fresh exception each call: raising one instance again and again would chain every traceback onto it.
            raise ProviderError(
                answer.code,
                answer.message,
                retryable=answer.retryable,
                retry_after=answer.retry_after,
                usage=answer.usage,
            )
        return answer

    async def aclose(self) -> None:
        return None


def recorded_providers(store: RecordingStore, names: Iterable[str] = PROVIDERS) -> dict[str, Provider]:
    return {name: RecordedProvider(name, store) for name in names}


class RecordingProvider:
    """A live provider whose answers, and non-retryable errors, are also written to `directory`."""

    def __init__(self, inner: Provider, directory: Path) -> None:
        self.name = inner.name
        self._inner = inner
        self._directory = directory

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        try:
            reply = await self._inner.complete(request)
        except ProviderError as exc:
            if not exc.retryable:
                self._write(request, error=RecordedFailure.of(exc))
            raise
        self._write(request, response=_response_of(self.name, request, reply))
        return reply

    def _write(self, request: ProviderRequest, **answer: Any) -> None:
        recording = Recording(
            provider=self.name,
            model=request.model,
            key=request_key(request),
            request=RecordedRequest.of(request),
            **answer,
        )
        write_recording(self._directory, recording)

    async def aclose(self) -> None:
        await self._inner.aclose()


def recording_providers(providers: Mapping[str, Provider], directory: Path) -> dict[str, Provider]:
    return {name: RecordingProvider(provider, directory) for name, provider in providers.items()}


_OLLAMA_DONE_REASONS = {stop: done for done, stop in DONE_REASONS.items()}
_OPENAI_FINISH_REASONS = {stop: finish for finish, stop in FINISH_REASONS.items()}


def _response_of(provider: str, request: ProviderRequest, reply: ProviderReply) -> dict[str, Any]:
    """The provider's response body that its own parsing turns back into `reply` (checked by the round-trip test)."""
    usage = reply.usage
    if provider == "anthropic":
        return {
            "id": f"msg_recorded_{request_key(request)[:24]}",
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": [{"type": "text", "text": reply.text}],
            "stop_reason": reply.stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                "cache_read_input_tokens": usage.cache_read_input_tokens,
            },
        }
    stop = reply.stop_reason
    if provider == "openai":
        return {
            "id": f"chatcmpl-recorded-{request_key(request)[:24]}",
            "object": "chat.completion",
            "created": int(datetime.now(UTC).timestamp()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": None if stop is None else _OPENAI_FINISH_REASONS.get(stop, stop),
                }
            ],
            # The cached tokens are part of `prompt_tokens` (docs/contract.md §5).
            "usage": {
                "prompt_tokens": usage.input_tokens + usage.cache_read_input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.cache_read_input_tokens + usage.output_tokens,
                "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
            },
        }
    return {
        "model": request.model,
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "message": {"role": "assistant", "content": reply.text},
        "done": True,
        "done_reason": None if stop is None else _OLLAMA_DONE_REASONS.get(stop, stop),
        "prompt_eval_count": usage.input_tokens,
        "eval_count": usage.output_tokens,
    }
