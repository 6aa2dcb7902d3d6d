"""Malformed answers over real HTTP (docs/contract.md §4): the fakes answer in the real API shapes, spoiled in
one place.

Every malformed answer is `provider_error`, not retryable, and carries the usage it reported when every count
in it is a JSON integer from 0 to 1,000,000,000 (else none: nothing is billed). An answer cut short by its
connection is `provider_unavailable`, retried. A provider error body that quotes the prompt, plain or
JSON-escaped, leaves no 20 consecutive characters of it in the message (docs/contract.md §11).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from catalog import Usage
from testkit import FakeAnthropic, FakeConfig, FakeOllama, Step
from tests.providers.support import API_KEY, REQUEST
from worker.contract import ErrorCode
from worker.providers import Provider, ProviderError, ProviderRequest
from worker.providers.anthropic import AnthropicProvider
from worker.providers.ollama import OllamaProvider
from worker.providers.redaction import WINDOW

pytestmark = pytest.mark.nats

LLAMA = replace(REQUEST, model="llama3.2")
# Longer than any cut, with characters that JSON escapes (quotes, newlines, backslashes, non-ASCII).
PROMPT = "".join(f'Step {n}: say "héllo" to C:\\users\\{n}\nthen wait. ' for n in range(40))
SYSTEM = 'You are "Scout", a terse agent — réponds en français.\n' * 3


async def _failure(provider: Provider, request: ProviderRequest = REQUEST) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.complete(request)
    return caught.value


def _assert_malformed(error: ProviderError, usage: Usage | None) -> None:
    assert (error.code, error.retryable) == (ErrorCode.PROVIDER_ERROR, False), error.message
    assert error.usage == usage


# -- Anthropic ---------------------------------------------------------------------------------------------------

VALID = {"input_tokens": 12, "output_tokens": 7, "cache_creation_input_tokens": 3, "cache_read_input_tokens": 2}


@pytest.mark.parametrize(
    ("patch", "fault"),
    [
        pytest.param({"content": [{"type": "text"}]}, "a text block has no `text`", id="text-block-without-text"),
        pytest.param({"content": [{"type": "text", "text": None}]}, "no `text`", id="text-null"),
        pytest.param({"content": None}, "`content` is not a list", id="no-content"),
        pytest.param({"content": []}, "no text block", id="content-empty"),
        pytest.param(
            {"content": [{"type": "thinking", "thinking": "hmm", "signature": "s"}]},
            "no text block",
            id="thinking-only-end-turn",
        ),
        pytest.param({"type": "completion"}, 'its `type` is not "message"', id="wrong-type"),
    ],
)
async def test_an_anthropic_answer_without_text_fails_and_bills_its_valid_usage(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider, patch: dict[str, Any], fault: str
) -> None:
    fake_anthropic.script(Step.reply(usage=VALID, patch=patch))

    error = await _failure(anthropic_provider)

    _assert_malformed(error, Usage(12, 7, 3, 2))
    assert fault in error.message


@pytest.mark.parametrize(
    "counts",
    [
        pytest.param({"output_tokens": 2**63 - 1}, id="2**63-1"),
        pytest.param({"output_tokens": 10**20}, id="1e20-read-as-float"),
        pytest.param({"input_tokens": 1_000_000_001}, id="over-a-billion"),
        pytest.param({"input_tokens": -1}, id="negative"),
        pytest.param({"input_tokens": 1.5}, id="float"),
        pytest.param({"input_tokens": 12.0}, id="integral-float"),
        pytest.param({"output_tokens": "7"}, id="string"),
        pytest.param({"output_tokens": True}, id="bool"),
        pytest.param({"cache_read_input_tokens": 2**64}, id="beyond-64-bits"),
        pytest.param({"input_tokens": None}, id="required-null"),
    ],
)
async def test_an_anthropic_usage_count_that_is_not_a_count_fails_and_bills_nothing(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider, counts: dict[str, object]
) -> None:
    fake_anthropic.script(Step.reply(usage={**VALID, **counts}))

    error = await _failure(anthropic_provider)

    _assert_malformed(error, None)
    assert "is not a token count" in error.message


async def test_anthropic_usage_counts_at_the_limit_are_counts(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider
) -> None:
    fake_anthropic.script(Step.reply(usage={**VALID, "output_tokens": 10**9, "cache_read_input_tokens": None}))

    reply = await anthropic_provider.complete(REQUEST)

    assert reply.usage == Usage(12, 10**9, 3, 0)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("<html>502 Bad Gateway</html>", id="html"),
        pytest.param('{"type": "message", "content": [', id="cut-json"),
        pytest.param("", id="empty"),
        pytest.param("NaN", id="nan"),
        pytest.param("[]", id="array"),
        pytest.param(
            '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}', id="error-in-a-200"
        ),
    ],
)
async def test_an_anthropic_200_that_is_not_an_answer_fails_and_bills_nothing(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider, body: str
) -> None:
    fake_anthropic.script(Step.garbage(body))

    error = await _failure(anthropic_provider)

    _assert_malformed(error, None)
    assert error.message.startswith("Anthropic: answered HTTP 200 with a body that is not ")


async def test_an_anthropic_answer_cut_short_by_its_connection_is_retried(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider
) -> None:
    fake_anthropic.script(Step.truncated())

    error = await _failure(anthropic_provider)

    assert (error.code, error.retryable, error.usage) == (ErrorCode.PROVIDER_UNAVAILABLE, True, None)
    assert fake_anthropic.stats.calls == 1


# -- Ollama ------------------------------------------------------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["single-object", "ndjson-stream"])
async def ollama(request: pytest.FixtureRequest) -> AsyncIterator[tuple[FakeOllama, OllamaProvider]]:
    """The fake answering as asked (one object), or streaming NDJSON anyway, as some proxies do."""
    async with FakeOllama(FakeConfig(stream_always=request.param)) as fake:
        provider = OllamaProvider(host=fake.url, concurrency=2)
        yield fake, provider
        await provider.aclose()


@pytest.mark.parametrize(
    "counts",
    [
        pytest.param({"eval_count": 2**63 - 1}, id="2**63-1"),
        pytest.param({"prompt_eval_count": 1.5}, id="float"),
        pytest.param({"prompt_eval_count": -3}, id="negative"),
        pytest.param({"eval_count": "5"}, id="string"),
        pytest.param({"eval_count": 10**20}, id="1e20-read-as-float"),
    ],
)
async def test_an_ollama_usage_count_that_is_not_a_count_fails_and_bills_nothing(
    ollama: tuple[FakeOllama, OllamaProvider], counts: dict[str, object]
) -> None:
    fake, provider = ollama
    fake.script(Step.reply(usage=counts))

    error = await _failure(provider, LLAMA)

    _assert_malformed(error, None)
    assert "is not a token count" in error.message


async def test_an_ollama_answer_without_text_fails_and_bills_its_valid_usage(
    ollama: tuple[FakeOllama, OllamaProvider],
) -> None:
    fake, provider = ollama
    fake.script(Step.reply(usage={"prompt_eval_count": 9, "eval_count": 4}, patch={"message": {"role": "assistant"}}))

    error = await _failure(provider, LLAMA)

    _assert_malformed(error, Usage(input_tokens=9, output_tokens=4))


async def test_an_error_inside_an_ollama_stream_fails_the_job_and_is_not_retried() -> None:
    async with FakeOllama(FakeConfig(stream_always=True)) as fake:
        provider = OllamaProvider(host=fake.url, concurrency=1)
        fake.script(Step.stream_error(f"llama runner crashed while reading: {PROMPT[100:400]}"))

        error = await _failure(provider, replace(LLAMA, user_message=PROMPT))
        await provider.aclose()

    _assert_malformed(error, None)
    assert error.message.startswith("Ollama: reported an error: llama runner crashed while reading:")
    assert _leaked(error.message, PROMPT) == []


async def test_an_ollama_answer_cut_short_by_its_connection_is_retried(
    ollama: tuple[FakeOllama, OllamaProvider],
) -> None:
    fake, provider = ollama
    fake.script(Step.truncated())

    error = await _failure(provider, LLAMA)

    assert (error.code, error.retryable, error.usage) == (ErrorCode.PROVIDER_UNAVAILABLE, True, None)


# -- error text that quotes the prompt (docs/contract.md §11) ------------------------------------------------


def _leaked(text: str, *prompts: str) -> list[str]:
    """The 20-character stretches of `text` found in a prompt, plain or JSON-escaped (brute force)."""
    forms = [form for prompt in prompts for form in (prompt, json.dumps(prompt)[1:-1], orjson.dumps(prompt).decode())]
    return [
        text[i : i + WINDOW] for i in range(len(text) - WINDOW + 1) if any(text[i : i + WINDOW] in f for f in forms)
    ]


def _echoing_bodies() -> list[Any]:
    """Error texts a provider might send: the prompt plain, JSON-escaped (as in a dumped request), from its middle."""
    sent = {"model": "x", "system": SYSTEM, "messages": [{"role": "user", "content": PROMPT}]}
    return [
        pytest.param(f"messages.0.content: {PROMPT!s} is too long", id="plain"),
        pytest.param(f"invalid request body: {json.dumps(sent)}", id="json-ascii"),
        pytest.param(f"invalid request body: {orjson.dumps(sent).decode()}", id="json-kept"),
        pytest.param(f"prompt rejected near: {PROMPT[700:1000]}", id="middle"),
        pytest.param(f"system: {SYSTEM[30:90]!r}", id="system-repr-part"),
    ]


@pytest.mark.parametrize("detail", _echoing_bodies())
async def test_an_anthropic_400_quoting_the_prompt_leaves_none_of_it(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider, detail: str
) -> None:
    fake_anthropic.script(Step.fault(400, message=detail))

    error = await _failure(anthropic_provider, replace(REQUEST, system_prompt=SYSTEM, user_message=PROMPT))

    assert error.code == ErrorCode.PROVIDER_BAD_REQUEST
    assert error.message.startswith("Anthropic answered HTTP 400: invalid_request_error: ")
    assert _leaked(error.message, PROMPT, SYSTEM) == []
    assert API_KEY not in error.message


@pytest.mark.parametrize("detail", _echoing_bodies())
async def test_an_ollama_400_quoting_the_prompt_leaves_none_of_it(
    ollama: tuple[FakeOllama, OllamaProvider], detail: str
) -> None:
    fake, provider = ollama
    fake.script(Step.fault(400, message=detail))

    error = await _failure(provider, replace(LLAMA, system_prompt=SYSTEM, user_message=PROMPT))

    assert error.code == ErrorCode.PROVIDER_BAD_REQUEST
    assert error.message.startswith("Ollama answered HTTP 400: ")
    assert _leaked(error.message, PROMPT, SYSTEM) == []


async def test_an_ollama_error_body_that_is_not_json_is_scrubbed_past_its_first_300_bytes(
    ollama: tuple[FakeOllama, OllamaProvider],
) -> None:
    # A proxy's page quoting the request raw: the prompt starts inside the cut and runs past it.
    fake, provider = ollama
    fake.script(Step.garbage(f"<pre>{'-' * 200}{json.dumps(PROMPT)}</pre>", status=400))

    error = await _failure(provider, replace(LLAMA, user_message=PROMPT))

    assert error.message.startswith("Ollama answered HTTP 400: <pre>---")
    assert _leaked(error.message, PROMPT) == []


@pytest.mark.parametrize("stop_reason", ["max_tokens", "refusal"])
async def test_an_anthropic_answer_whose_stop_reason_explains_no_text_completes_empty(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider, stop_reason: str
) -> None:
    # A budget spent thinking, or a refusal, may come with no text block: that is an answer, not a fault.
    fake_anthropic.script(Step.reply(usage=VALID, patch={"content": [], "stop_reason": stop_reason}))

    reply = await anthropic_provider.complete(REQUEST)

    assert (reply.text, reply.stop_reason, reply.usage) == ("", stop_reason, Usage(12, 7, 3, 2))
