"""Ollama through httpx against the fake `/api/chat`: both answer forms, mid-stream errors, stop reasons."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from catalog import Usage
from testkit import FakeOllama, Step
from tests.providers.support import REQUEST, SYSTEM_PROMPT, USER_MESSAGE
from worker.contract import ErrorCode
from worker.providers import ProviderError
from worker.providers.ollama import OllamaProvider, ollama_base_url, parse_chat_answer

pytestmark = pytest.mark.nats

LLAMA = replace(REQUEST, model="llama3.2", max_tokens=128)


async def test_one_call_sends_model_messages_num_predict_and_asks_for_no_stream(
    fake_ollama: FakeOllama, ollama_provider: OllamaProvider
) -> None:
    await ollama_provider.complete(LLAMA)

    (sent,) = fake_ollama.requests
    assert sent.path == "/api/chat"
    assert sent.body == {
        "model": "llama3.2",
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": USER_MESSAGE}],
        "stream": False,
        "options": {"num_predict": 128},
    }


async def test_no_system_prompt_sends_the_user_message_alone(
    fake_ollama: FakeOllama, ollama_provider: OllamaProvider
) -> None:
    await ollama_provider.complete(replace(LLAMA, system_prompt=None))

    (sent,) = fake_ollama.requests
    assert sent.body["messages"] == [{"role": "user", "content": USER_MESSAGE}]


@pytest.mark.parametrize("streamed", [False, True], ids=["single-object", "ndjson-stream"])
async def test_both_answer_forms_give_the_same_reply(
    fake_ollama: FakeOllama, ollama_provider: OllamaProvider, streamed: bool
) -> None:
    fake_ollama.config.stream_always = streamed
    fake_ollama.script(Step.reply("The notes say three things.", usage={"prompt_eval_count": 31, "eval_count": 6}))

    reply = await ollama_provider.complete(LLAMA)

    assert reply.text == "The notes say three things."
    assert reply.stop_reason == "end_turn"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (31, 6)
    assert (reply.usage.cache_creation_input_tokens, reply.usage.cache_read_input_tokens) == (0, 0)


@pytest.mark.parametrize(
    ("done_reason", "stop_reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("load", "load"), ("unload", "unload")],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["single-object", "ndjson-stream"])
async def test_done_reason_maps_to_the_stop_reason(
    fake_ollama: FakeOllama, ollama_provider: OllamaProvider, streamed: bool, done_reason: str, stop_reason: str
) -> None:
    fake_ollama.config.stream_always = streamed
    fake_ollama.script(Step.reply(stop_reason=done_reason))

    assert (await ollama_provider.complete(LLAMA)).stop_reason == stop_reason


async def test_running_out_of_num_predict_is_max_tokens(
    fake_ollama: FakeOllama, ollama_provider: OllamaProvider
) -> None:
    fake_ollama.script(Step.reply("one two three four five"))

    reply = await ollama_provider.complete(replace(LLAMA, max_tokens=2))

    assert (reply.text, reply.stop_reason, reply.usage.output_tokens) == ("one two", "max_tokens", 2)


async def test_an_error_line_mid_stream_fails_the_call(
    fake_ollama: FakeOllama, ollama_provider: OllamaProvider
) -> None:
    fake_ollama.config.stream_always = True
    fake_ollama.script(Step.stream_error("llama runner process has terminated"))

    with pytest.raises(ProviderError) as caught:
        await ollama_provider.complete(LLAMA)

    assert (caught.value.code, caught.value.retryable) == (ErrorCode.PROVIDER_ERROR, False)
    assert "llama runner process has terminated" in caught.value.message
    assert fake_ollama.stats.by_status == {200: 1}


async def test_an_error_during_a_non_streamed_generation_is_a_500(
    fake_ollama: FakeOllama, ollama_provider: OllamaProvider
) -> None:
    fake_ollama.script(Step.stream_error("out of memory"))

    with pytest.raises(ProviderError) as caught:
        await ollama_provider.complete(LLAMA)

    assert (caught.value.code, caught.value.retryable) == (ErrorCode.PROVIDER_UNAVAILABLE, True)
    assert "out of memory" in caught.value.message


async def test_unknown_model_is_ollamas_404(fake_ollama: FakeOllama, ollama_provider: OllamaProvider) -> None:
    fake_ollama.config.models = ("llama3.1",)

    with pytest.raises(ProviderError) as caught:
        await ollama_provider.complete(LLAMA)

    assert caught.value.code == ErrorCode.PROVIDER_BAD_REQUEST
    assert "model 'llama3.2' not found" in caught.value.message


def _ndjson(*lines: object) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


DONE = {"message": {"content": ""}, "done": True, "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 2}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        pytest.param(b" \n", "empty", id="empty"),
        pytest.param(b"<html>bad gateway</html>", "not JSON", id="html"),
        pytest.param(b'{"error": "model is loading"}', "model is loading", id="error-object"),
        pytest.param(b"[1, 2]", "other than JSON objects", id="array"),
        pytest.param(
            _ndjson({"message": {"content": "Hel"}, "done": False}, {"error": "unexpected EOF"}),
            "unexpected EOF",
            id="error-line",
        ),
        pytest.param(
            _ndjson({"message": {"content": "Hel"}, "done": False}) + b"not json\n" + _ndjson(DONE),
            "not JSON or NDJSON",
            id="garbage-line",
        ),
        pytest.param(_ndjson({"done": False}, DONE), "a chunk has no `message.content`", id="chunk-without-text"),
    ],
)
def test_an_answer_that_is_not_a_finished_chat_is_never_a_silent_empty_reply(body: bytes, why: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_chat_answer(body)

    assert (caught.value.code, caught.value.retryable) == (ErrorCode.PROVIDER_ERROR, False)
    assert why in caught.value.message
    assert caught.value.usage is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_ndjson({"message": {"role": "assistant", "content": "Hel"}, "done": False}), id="no-done"),
        pytest.param(b'{"model": "llama3.2", "message": {"content": "Hel"}, "done": false}', id="object-not-done"),
        pytest.param(_ndjson({"message": {"content": "Hel"}, "done": False}) + b'{"message": {"con', id="cut-line"),
    ],
)
def test_an_answer_that_stops_before_it_is_done_is_a_connection_error_and_retried(body: bytes) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_chat_answer(body)

    assert (caught.value.code, caught.value.retryable) == (ErrorCode.PROVIDER_UNAVAILABLE, True)
    assert "ended before it was complete" in caught.value.message


@pytest.mark.parametrize(
    "counts",
    [
        {"prompt_eval_count": True, "eval_count": 4},
        {"prompt_eval_count": 3, "eval_count": -4},
        {"prompt_eval_count": 3, "eval_count": 1.5},
        {"prompt_eval_count": "3", "eval_count": 4},
        {"prompt_eval_count": 2**63 - 1, "eval_count": 4},
        {"prompt_eval_count": 3, "eval_count": 1_000_000_001},
    ],
)
def test_counts_that_are_not_counts_fail_the_answer_and_bill_nothing(counts: dict[str, object]) -> None:
    body = orjson.dumps({"message": {"content": "ok"}, "done": True, **counts})

    with pytest.raises(ProviderError) as caught:
        parse_chat_answer(body)

    assert (caught.value.code, caught.value.retryable, caught.value.usage) == (ErrorCode.PROVIDER_ERROR, False, None)
    assert "is not a token count" in caught.value.message


def test_counts_at_the_limits_are_counts_and_missing_ones_are_zero() -> None:
    reply = parse_chat_answer(orjson.dumps({"message": {"content": "ok"}, "done": True, "eval_count": 10**9}))

    assert (reply.text, reply.usage.input_tokens, reply.usage.output_tokens) == ("ok", 0, 10**9)


def test_a_done_answer_without_text_fails_but_bills_its_valid_usage() -> None:
    body = orjson.dumps({"done": True, "done_reason": "stop", "prompt_eval_count": 7, "eval_count": 5})

    with pytest.raises(ProviderError) as caught:
        parse_chat_answer(body)

    assert (caught.value.code, caught.value.retryable) == (ErrorCode.PROVIDER_ERROR, False)
    assert caught.value.usage == Usage(input_tokens=7, output_tokens=5)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("127.0.0.1", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://0.0.0.0:11434"),
        (":11434", "http://127.0.0.1:11434"),
        ("", "http://127.0.0.1:11434"),
        ("ollama.internal:8000", "http://ollama.internal:8000"),
        ("https://ollama.example.com", "https://ollama.example.com"),
        ("https://gw.example.com/ollama/", "https://gw.example.com/ollama"),
        ("[::1]", "http://[::1]:11434"),
        ("[::1]:9999", "http://[::1]:9999"),
    ],
)
def test_ollama_host_is_read_the_way_ollama_reads_it(host: str, url: str) -> None:
    assert ollama_base_url(host) == url
