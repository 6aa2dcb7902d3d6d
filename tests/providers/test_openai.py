"""OpenAI through the real SDK against the fake Chat Completions API: what is sent and what is read back.

The error table's common rows run for every provider in `test_error_mapping.py`; here are OpenAI's own:
the request's shape, the usage mapping of docs/contract.md §5, `insufficient_quota`, malformed and
truncated answers (docs/contract.md §4).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from catalog import Usage
from testkit import FakeOpenAI, Step
from tests.providers.support import API_KEY, REQUEST, SYSTEM_PROMPT, USER_MESSAGE
from worker.contract import ErrorCode
from worker.providers import ProviderError, RetryPolicy, call_with_retry
from worker.providers.openai import OpenAIProvider

pytestmark = pytest.mark.nats

GPT5 = replace(REQUEST, model="gpt-5")


@pytest.fixture
async def single(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAIProvider]:
    """A pool of one connection: a call that kept its connection would stall the next one."""
    provider = OpenAIProvider(api_key=API_KEY, base_url=fake_openai.base_url, concurrency=1)
    yield provider
    await provider.aclose()


async def _error_of(provider: OpenAIProvider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.complete(GPT5)
    return caught.value


async def _still_answers(provider: OpenAIProvider) -> None:
    async with asyncio.timeout(5):
        reply = await provider.complete(GPT5)
    assert reply.text == "Hello from the fake provider."


async def test_one_call_sends_a_developer_message_a_user_message_and_max_completion_tokens(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider
) -> None:
    reply = await openai_provider.complete(GPT5)

    assert reply.model == "gpt-5"
    (sent,) = fake_openai.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.body == {
        "model": "gpt-5",
        "messages": [{"role": "developer", "content": SYSTEM_PROMPT}, {"role": "user", "content": USER_MESSAGE}],
        "max_completion_tokens": 64,
    }


async def test_no_system_prompt_sends_the_user_message_alone(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider
) -> None:
    await openai_provider.complete(replace(GPT5, system_prompt=None))
    await openai_provider.complete(replace(GPT5, system_prompt=""))

    assert [[m["role"] for m in sent.body["messages"]] for sent in fake_openai.requests] == [["user"], ["user"]]


async def test_the_key_goes_as_a_bearer_token_and_the_sdk_does_not_retry_by_itself(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider
) -> None:
    fake_openai.script(Step.fault(503))

    with pytest.raises(ProviderError):
        await openai_provider.complete(GPT5)

    (sent,) = fake_openai.requests
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert fake_openai.stats.calls == 1


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(
            {"prompt_tokens": 1200, "completion_tokens": 300, "cached_tokens": 1024, "reasoning_tokens": 256},
            Usage(input_tokens=176, output_tokens=300, cache_read_input_tokens=1024),
            id="cached-and-reasoning",
        ),
        pytest.param(
            {"prompt_tokens": 812, "completion_tokens": 240},
            Usage(input_tokens=812, output_tokens=240),
            id="no-cache-no-reasoning",
        ),
        pytest.param(
            {
                "prompt_tokens": 90,
                "completion_tokens": 10,
                "prompt_tokens_details": None,
                "completion_tokens_details": None,
            },
            Usage(input_tokens=90, output_tokens=10),
            id="details-absent",
        ),
        pytest.param(
            {"prompt_tokens": 50, "completion_tokens": 7, "cached_tokens": None, "reasoning_tokens": None},
            Usage(input_tokens=50, output_tokens=7),
            id="details-counts-null",
        ),
        pytest.param(
            {"prompt_tokens": 64, "completion_tokens": 0, "cached_tokens": 64},
            Usage(input_tokens=0, output_tokens=0, cache_read_input_tokens=64),
            id="all-cached",
        ),
    ],
)
async def test_usage_counts_cached_and_reasoning_tokens_once(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, usage: dict[str, int | None], expected: Usage
) -> None:
    fake_openai.script(Step.reply("Done.", usage=usage))

    reply = await openai_provider.complete(GPT5)

    assert reply.usage == expected
    assert reply.usage.cache_creation_input_tokens == 0
    # Whatever the split, raw input is what OpenAI calls the prompt, and output is the completion.
    assert (reply.usage.raw_input, reply.usage.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("tool_calls", "tool_calls"),
        ("function_call", "function_call"),
    ],
)
async def test_finish_reason_maps_to_the_stop_reason(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, finish_reason: str, stop_reason: str
) -> None:
    fake_openai.script(Step.reply("x", stop_reason=finish_reason))

    assert (await openai_provider.complete(GPT5)).stop_reason == stop_reason


async def test_max_completion_tokens_reached_is_max_tokens(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider
) -> None:
    fake_openai.script(Step.reply("one two three four five"))

    reply = await openai_provider.complete(replace(GPT5, max_tokens=3))

    assert (reply.text, reply.stop_reason, reply.usage.output_tokens) == ("one two three", "max_tokens", 3)


async def test_insufficient_quota_is_auth_and_not_retried(fake_openai: FakeOpenAI, single: OpenAIProvider) -> None:
    fake_openai.script(Step.fault(429, error_code="insufficient_quota", retry_after=1), Step.reply("too late"))
    loop = asyncio.get_running_loop()

    with pytest.raises(ProviderError) as caught:
        await call_with_retry(single, GPT5, deadline=loop.time() + 30, policy=RetryPolicy(base=0.01, cap=0.01))

    error = caught.value
    assert (error.code, error.retryable, error.retry_after) == (ErrorCode.PROVIDER_AUTH, False, None)
    assert "insufficient_quota" in error.message
    assert fake_openai.stats.calls == 1


async def test_an_ordinary_429_is_retried_after_its_retry_after(
    fake_openai: FakeOpenAI, single: OpenAIProvider
) -> None:
    fake_openai.script(Step.fault(429, retry_after=0.3), Step.reply("second time"))
    loop = asyncio.get_running_loop()

    started = loop.time()
    reply = await call_with_retry(single, GPT5, deadline=started + 30, policy=RetryPolicy(base=0.01, cap=0.01))

    assert reply.text == "second time"
    assert loop.time() - started >= 0.3
    assert fake_openai.stats.calls == 2


async def test_a_wrong_key_is_auth_and_the_key_is_not_quoted(fake_openai: FakeOpenAI) -> None:
    provider = OpenAIProvider(api_key="sk-proj-wrong-key-0123456789", base_url=fake_openai.base_url, concurrency=1)
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(GPT5)
    finally:
        await provider.aclose()

    assert (caught.value.code, caught.value.retryable) == (ErrorCode.PROVIDER_AUTH, False)
    assert "Incorrect API key" in caught.value.message
    assert "sk-proj-wrong-key-0123456789" not in caught.value.message


async def test_a_truncated_answer_is_a_connection_error_and_frees_the_connection(
    fake_openai: FakeOpenAI, single: OpenAIProvider
) -> None:
    fake_openai.script(Step.truncated())

    error = await _error_of(single)

    assert (error.code, error.retryable, error.usage) == (ErrorCode.PROVIDER_UNAVAILABLE, True, None)
    assert fake_openai.stats.calls == 1
    await _still_answers(single)


#: A real Chat Completions answer, as the wire carries it; the cases below each break one part of it.
COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-01",
    "object": "chat.completion",
    "created": 1_760_000_000,
    "model": "gpt-5",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 10,
        "completion_tokens": 2,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 1},
    },
}
VALID_USAGE = Usage(input_tokens=6, output_tokens=2, cache_read_input_tokens=4)


def _with(**changes: Any) -> str:
    return orjson.dumps({**COMPLETION, **changes}).decode()


def _with_usage(**changes: Any) -> str:
    return _with(usage={**COMPLETION["usage"], **changes})


MALFORMED = [
    pytest.param("<html>502 from a confused proxy", "not JSON", None, id="not-json"),
    pytest.param('{"id": 1, "usage": NaN}', "not JSON", None, id="nan-is-not-json"),
    pytest.param("[]", "it is not a JSON object", None, id="json-array"),
    pytest.param(
        orjson.dumps({"error": {"message": f"upstream failed on {USER_MESSAGE}", "type": "server_error"}}).decode(),
        "it is an error (server_error: upstream failed on [redacted])",
        None,
        id="error-object-with-200",
    ),
    pytest.param(
        '{"object": "error", "message": "The model does not exist.", "type": "NotFoundError", "param": null}',
        "it is an error (NotFoundError: The model does not exist.)",
        None,
        id="vllm-error-object-with-200",
    ),
    pytest.param(_with(choices=[]), "it has no `choices`", VALID_USAGE, id="no-choices"),
    pytest.param(
        _with(choices=[{"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "stop"}]),
        "its message has no text",
        VALID_USAGE,
        id="no-text",
    ),
    pytest.param(
        _with(choices=[{"index": 0, "message": {"role": "assistant", "content": ["Hi"]}, "finish_reason": "stop"}]),
        "`message.content` is not a string",
        VALID_USAGE,
        id="content-not-text",
    ),
    pytest.param(_with(usage=None), "it has no `usage`", None, id="no-usage"),
    pytest.param(_with_usage(prompt_tokens=10.0), "`usage.prompt_tokens` is not a token count", None, id="float"),
    pytest.param(_with_usage(completion_tokens=True), "`usage.completion_tokens`", None, id="boolean"),
    pytest.param(_with_usage(prompt_tokens=-1), "`usage.prompt_tokens`", None, id="negative"),
    pytest.param(_with_usage(prompt_tokens="10"), "`usage.prompt_tokens`", None, id="string"),
    pytest.param(_with_usage(completion_tokens=1_000_000_001), "`usage.completion_tokens`", None, id="over-1e9"),
    pytest.param(
        _with_usage(prompt_tokens=1).replace('"prompt_tokens":1,', '"prompt_tokens":100000000000000000000,'),
        "`usage.prompt_tokens`",
        None,
        id="beyond-64-bits",
    ),
    pytest.param(
        _with_usage(prompt_tokens_details={"cached_tokens": 1.5}),
        "`usage.prompt_tokens_details.cached_tokens`",
        None,
        id="cached-float",
    ),
    pytest.param(
        _with_usage(completion_tokens_details={"reasoning_tokens": -3}),
        "`usage.completion_tokens_details.reasoning_tokens`",
        None,
        id="reasoning-negative",
    ),
    pytest.param(
        _with_usage(prompt_tokens_details={"cached_tokens": 11}),
        "`usage.prompt_tokens_details.cached_tokens` exceeds `prompt_tokens`",
        None,
        id="cached-above-prompt",
    ),
    pytest.param(
        _with(choices=[{"message": {"content": "Hi"}, "finish_reason": "stop"}], usage={"prompt_tokens": 1}),
        "`usage.completion_tokens`",
        None,
        id="count-missing",
    ),
]


@pytest.mark.parametrize(("body", "fault", "usage"), MALFORMED)
async def test_a_200_that_is_not_a_completion_fails_not_retryable_billing_only_valid_usage(
    fake_openai: FakeOpenAI, single: OpenAIProvider, body: str, fault: str, usage: Usage | None
) -> None:
    fake_openai.script(Step.garbage(body))

    error = await _error_of(single)

    assert (error.code, error.retryable, error.usage) == (ErrorCode.PROVIDER_ERROR, False, usage)
    assert error.message.startswith("OpenAI: answered HTTP 200 with a body that is not ")
    assert fault in error.message
    for secret in (API_KEY, SYSTEM_PROMPT, USER_MESSAGE):
        assert secret not in error.message
    await _still_answers(single)


@pytest.mark.parametrize(
    ("message", "finish_reason", "text"),
    [
        (
            {"role": "assistant", "content": None, "refusal": "I can't help with that."},
            "stop",
            "I can't help with that.",
        ),
        ({"role": "assistant", "content": None}, "length", ""),
        ({"role": "assistant", "content": ""}, "length", ""),
        ({"role": "assistant", "content": None}, "content_filter", ""),
    ],
    ids=["refusal-text", "reasoning-used-the-budget", "empty-at-length", "filtered"],
)
async def test_answers_without_content_that_are_still_answers(
    fake_openai: FakeOpenAI, single: OpenAIProvider, message: dict[str, Any], finish_reason: str, text: str
) -> None:
    fake_openai.script(Step.garbage(_with(choices=[{"index": 0, "message": message, "finish_reason": finish_reason}])))

    reply = await single.complete(GPT5)

    assert (reply.text, reply.usage) == (text, VALID_USAGE)


async def test_the_pool_holds_as_many_calls_in_flight_as_the_concurrency(fake_openai: FakeOpenAI) -> None:
    # WORKER_CONCURRENCY sizes the one client's pool: a seventh concurrent call waits for a connection.
    fake_openai.config.delay = 0.2
    provider = OpenAIProvider(api_key=API_KEY, base_url=fake_openai.base_url, concurrency=3)
    try:
        replies = await asyncio.gather(*(provider.complete(GPT5) for _ in range(7)))
    finally:
        await provider.aclose()

    assert len(replies) == 7
    assert fake_openai.stats.max_in_flight == 3


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(404, ErrorCode.PROVIDER_BAD_REQUEST, False), (503, ErrorCode.PROVIDER_UNAVAILABLE, True)],
)
async def test_an_openai_compatible_servers_own_error_body_is_classified_and_quoted(
    fake_openai: FakeOpenAI, single: OpenAIProvider, status: int, code: ErrorCode, retryable: bool
) -> None:
    # vLLM's error shape: no `error` wrapper, `object` "error", `code` the HTTP status as a number.
    body = orjson.dumps(
        {"object": "error", "message": "The model `gpt-5` does not exist.", "type": "NotFoundError", "code": status}
    ).decode()
    fake_openai.script(Step.garbage(body, status=status))

    error = await _error_of(single)

    assert (error.code, error.retryable) == (code, retryable)
    assert error.message == f"OpenAI answered HTTP {status}: NotFoundError: The model `gpt-5` does not exist."
    await _still_answers(single)
