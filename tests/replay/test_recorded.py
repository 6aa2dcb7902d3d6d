"""The recorded provider and its file format: matching, defaults, recorded errors, the no-recording error."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from catalog import Usage, default_catalog
from tests.replay.support import anthropic_default
from worker.contract import ErrorCode
from worker.providers.base import ProviderError, ProviderRequest
from worker.providers.exchange import (
    RecordedFailure,
    RecordedRequest,
    Recording,
    RecordingError,
    read_recording,
    request_key,
    write_recording,
)
from worker.providers.recorded import RecordedProvider, RecordingStore, packaged_recordings

pytestmark = pytest.mark.unit

REQUEST = ProviderRequest(model="claude-sonnet-4-6", system_prompt="Be brief.", user_message="Hi", max_tokens=64)


def test_the_key_hashes_prompt_message_and_max_tokens_and_nothing_else() -> None:
    key = request_key(REQUEST)
    assert len(key) == 64
    assert request_key(ProviderRequest("claude-opus-4-6", "Be brief.", "Hi", 64)) == key  # the model is matched apart
    assert request_key(ProviderRequest("claude-sonnet-4-6", None, "Hi", 64)) != key
    assert request_key(ProviderRequest("claude-sonnet-4-6", "Be brief.", "Hi!", 64)) != key
    assert request_key(ProviderRequest("claude-sonnet-4-6", "Be brief.", "Hi", 65)) != key


async def test_an_exact_recording_wins_over_the_models_default(recordings: Path) -> None:
    write_recording(recordings, anthropic_default("claude-sonnet-4-6", input_tokens=1, output_tokens=2))
    exact = anthropic_default("claude-sonnet-4-6", input_tokens=10, output_tokens=20, cache_read=5)
    write_recording(recordings, exact.model_copy(update={"request": RecordedRequest.of(REQUEST)}))
    provider = RecordedProvider("anthropic", RecordingStore.load([recordings]))

    reply = await provider.complete(REQUEST)
    other = await provider.complete(ProviderRequest("claude-sonnet-4-6", None, "something else", 64))

    assert reply.usage == Usage(input_tokens=10, output_tokens=20, cache_read_input_tokens=5)
    assert (reply.text, reply.stop_reason) == ("answer from claude-sonnet-4-6", "end_turn")
    assert other.usage == Usage(input_tokens=1, output_tokens=2)


async def test_no_recording_is_a_provider_error_naming_the_model_and_the_key(recordings: Path) -> None:
    write_recording(recordings, anthropic_default("claude-haiku-4-5-20251001", input_tokens=1, output_tokens=1))
    provider = RecordedProvider("anthropic", RecordingStore.load([recordings]))

    with pytest.raises(ProviderError) as raised:
        await provider.complete(REQUEST)

    error = raised.value
    assert error.code == ErrorCode.PROVIDER_ERROR
    assert error.retryable is False
    assert "anthropic model claude-sonnet-4-6" in error.message
    assert request_key(REQUEST) in error.message
    assert "--record" in error.message


async def test_a_recorded_error_is_raised_as_recorded(recordings: Path) -> None:
    failure = RecordedFailure(
        code=ErrorCode.PROVIDER_BAD_REQUEST, message="Ollama answered HTTP 404: no such model", retryable=False
    )
    write_recording(recordings, Recording(provider="ollama", model="mistral", error=failure))
    provider = RecordedProvider("ollama", RecordingStore.load([recordings]))

    with pytest.raises(ProviderError) as raised:
        await provider.complete(ProviderRequest("mistral", None, "Hi", 10))

    assert (raised.value.code, raised.value.message, raised.value.retryable) == (
        ErrorCode.PROVIDER_BAD_REQUEST,
        "Ollama answered HTTP 404: no such model",
        False,
    )


async def test_ollama_answers_go_through_ollamas_own_parsing(recordings: Path) -> None:
    body = {"model": "llama3.2", "message": {"role": "assistant", "content": "cut"}, "done": True}
    write_recording(
        recordings,
        Recording(provider="ollama", model="llama3.2", response={**body, "done_reason": "length", "eval_count": 7}),
    )
    write_recording(recordings, Recording(provider="ollama", model="mistral", response={"error": "model is loading"}))
    provider = RecordedProvider("ollama", RecordingStore.load([recordings]))

    reply = await provider.complete(ProviderRequest("llama3.2", None, "Hi", 7))
    with pytest.raises(ProviderError) as raised:
        await provider.complete(ProviderRequest("mistral", None, "Hi", 7))

    assert (reply.text, reply.stop_reason, reply.usage) == ("cut", "max_tokens", Usage(output_tokens=7))
    assert raised.value.code == ErrorCode.PROVIDER_ERROR
    assert "model is loading" in raised.value.message


def test_a_written_recording_reads_back_equal(recordings: Path) -> None:
    recording = anthropic_default("claude-opus-4-6", input_tokens=3, output_tokens=4).model_copy(
        update={"request": RecordedRequest.of(REQUEST), "key": request_key(REQUEST)}
    )
    path = write_recording(recordings, recording)

    assert path.name == f"anthropic-claude-opus-4-6-{request_key(REQUEST)[:16]}.json"
    assert read_recording(path) == recording


@pytest.mark.parametrize(
    ("change", "fault"),
    [
        ({"key": "0" * 64}, "is not the hash of `request`"),
        ({"error": {"code": "timeout", "message": "m", "retryable": False}}, "exactly one of `response` and `error`"),
        ({"response": None}, "exactly one of `response` and `error`"),
        ({"provider": "azure"}, "provider"),
        ({"format": 2}, "format"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_recording_is_refused_naming_the_file_and_the_fault(
    recordings: Path, change: dict[str, object], fault: str
) -> None:
    good = anthropic_default("claude-opus-4-6", input_tokens=3, output_tokens=4)
    document = {**good.model_dump(mode="json", by_alias=True, exclude_none=True)}
    document["request"] = RecordedRequest.of(REQUEST).model_dump(by_alias=True)
    path = recordings / "bad.json"
    path.write_bytes(orjson.dumps({**document, **change}))

    with pytest.raises(RecordingError) as raised:
        RecordingStore.load([recordings])

    assert str(path) in str(raised.value)
    assert fault in str(raised.value)


def test_a_response_that_is_not_a_messages_answer_is_refused_at_load(recordings: Path) -> None:
    (recordings / "broken.json").write_bytes(
        orjson.dumps({"format": 1, "provider": "anthropic", "model": "m", "response": {"content": "no"}})
    )

    with pytest.raises(RecordingError, match=r"broken\.json: `response` is not an Anthropic Messages answer"):
        RecordingStore.load([recordings])


async def test_the_packaged_recordings_answer_every_model_of_the_default_catalog() -> None:
    store = packaged_recordings()
    for model in default_catalog().models.values():
        provider = RecordedProvider(model.provider, store)
        reply = await provider.complete(ProviderRequest(model.provider_model, None, "any message at all", 100))
        assert reply.text
        assert reply.usage.input_tokens > 0
