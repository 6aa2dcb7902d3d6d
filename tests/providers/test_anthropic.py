"""Anthropic through the real SDK against the fake Messages API: what is sent and what is read back."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import orjson
import pytest

from testkit import FakeAnthropic, Step
from tests.providers.support import API_KEY, REQUEST, SYSTEM_PROMPT, USER_MESSAGE
from worker.contract import ErrorCode
from worker.providers import ProviderError
from worker.providers.anthropic import AnthropicProvider
from worker.providers.messages import MalformedAnswerError, reply_from_body

pytestmark = pytest.mark.nats


async def test_one_call_sends_model_max_tokens_system_and_one_user_message(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider
) -> None:
    await anthropic_provider.complete(REQUEST)

    (sent,) = fake_anthropic.requests
    assert sent.path == "/v1/messages"
    assert sent.body == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "system": SYSTEM_PROMPT,
        "messages": [{"role": "user", "content": USER_MESSAGE}],
    }


async def test_no_system_prompt_leaves_system_out(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider
) -> None:
    await anthropic_provider.complete(replace(REQUEST, system_prompt=None))
    await anthropic_provider.complete(replace(REQUEST, system_prompt=""))

    assert ["system" in sent.body for sent in fake_anthropic.requests] == [False, False]


async def test_the_key_goes_as_a_bearer_token_and_the_sdk_does_not_retry_by_itself(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider
) -> None:
    fake_anthropic.script(Step.fault(529))

    with pytest.raises(ProviderError):
        await anthropic_provider.complete(REQUEST)

    (sent,) = fake_anthropic.requests
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert fake_anthropic.stats.calls == 1


async def test_reply_text_stop_reason_and_all_four_usage_fields(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider
) -> None:
    usage = {
        "input_tokens": 812,
        "output_tokens": 240,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 50,
    }
    fake_anthropic.script(Step.reply("Here is the summary.", stop_reason="stop_sequence", usage=usage))

    reply = await anthropic_provider.complete(REQUEST)

    assert reply.text == "Here is the summary."
    assert reply.stop_reason == "stop_sequence"
    assert (
        reply.usage.input_tokens,
        reply.usage.output_tokens,
        reply.usage.cache_creation_input_tokens,
        reply.usage.cache_read_input_tokens,
    ) == (812, 240, 100, 50)


async def test_max_tokens_reached_is_reported_as_the_provider_says(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider
) -> None:
    fake_anthropic.script(Step.reply("one two three four five"))

    reply = await anthropic_provider.complete(replace(REQUEST, max_tokens=3))

    assert (reply.text, reply.stop_reason, reply.usage.output_tokens) == ("one two three", "max_tokens", 3)


async def test_cache_fields_sent_as_null_count_as_zero(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider
) -> None:
    fake_anthropic.script(Step.reply(usage={"cache_creation_input_tokens": None, "cache_read_input_tokens": None}))

    reply = await anthropic_provider.complete(REQUEST)

    assert (reply.usage.cache_creation_input_tokens, reply.usage.cache_read_input_tokens) == (0, 0)
    assert reply.usage.input_tokens > 0


#: A real Messages answer, as the wire carries it; the cases below each break one field of it.
MESSAGE: dict[str, Any] = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 2, "service_tier": "standard"},
}


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        pytest.param("<html>502 from a confused proxy", "not JSON", id="not-json"),
        pytest.param(
            orjson.dumps(
                {"type": "error", "error": {"type": "overloaded_error", "message": f"busy with {USER_MESSAGE}"}}
            ).decode(),
            "it is an error (overloaded_error: busy with [redacted])",
            id="error-body-with-200",
        ),
        pytest.param(
            orjson.dumps({key: value for key, value in MESSAGE.items() if key != "usage"}).decode(),
            "it has no `usage`",
            id="no-usage",
        ),
        pytest.param("[]", "it is not a JSON object", id="json-array"),
    ],
)
async def test_a_200_that_is_not_a_messages_answer_is_a_provider_error_and_frees_the_connection(
    fake_anthropic: FakeAnthropic, body: str, fault: str
) -> None:
    # A pool of one: had the malformed answer kept its connection, the next call would stall.
    provider = AnthropicProvider(api_key=API_KEY, base_url=fake_anthropic.url, concurrency=1)
    fake_anthropic.script(Step.garbage(body))
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(REQUEST)
        async with asyncio.timeout(5):
            reply = await provider.complete(REQUEST)
    finally:
        await provider.aclose()

    error = caught.value
    assert (error.code, error.retryable, error.usage) == (ErrorCode.PROVIDER_ERROR, False, None)
    assert error.message.startswith("Anthropic: answered HTTP 200 with a body that is not ")
    assert fault in error.message
    for secret in (API_KEY, SYSTEM_PROMPT, USER_MESSAGE):
        assert secret not in error.message
    assert reply.usage.input_tokens > 0


def test_only_text_blocks_make_the_reply_and_missing_cache_fields_count_as_zero() -> None:
    blocks = [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "text", "text": "one "},
        {"type": "tool_use", "id": "t", "name": "n", "input": {}},
        {"type": "text", "text": "two"},
    ]

    reply = reply_from_body({**MESSAGE, "content": blocks, "stop_reason": None})

    assert (reply.text, reply.stop_reason) == ("one two", None)
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (10, 2)
    assert (reply.usage.cache_creation_input_tokens, reply.usage.cache_read_input_tokens) == (0, 0)


@pytest.mark.parametrize(
    ("change", "fault"),
    [
        ({"type": "completion"}, 'its `type` is not "message"'),
        ({"type": "error", "error": {"type": "api_error", "message": "m"}}, "it is an error (api_error: m)"),
        ({"content": "Hi"}, "its `content` is not a list"),
        ({"content": ["Hi"]}, "a `content` block is not an object"),
        ({"content": [{"type": "text"}]}, "a text block has no `text`"),
        ({"stop_reason": 1}, "its `stop_reason` is not a string"),
        ({"usage": None}, "it has no `usage`"),
        (
            {"usage": {"output_tokens": 2}},
            "its `usage.input_tokens` is not a token count (a JSON integer from 0 to 1,000,000,000)",
        ),
        (
            {"usage": {"input_tokens": 10, "output_tokens": True}},
            "its `usage.output_tokens` is not a token count (a JSON integer from 0 to 1,000,000,000)",
        ),
        (
            {"usage": {"input_tokens": -1, "output_tokens": 2}},
            "its `usage.input_tokens` is not a token count (a JSON integer from 0 to 1,000,000,000)",
        ),
        (
            {"usage": {"input_tokens": 1, "output_tokens": 2, "cache_read_input_tokens": "5"}},
            "its `usage.cache_read_input_tokens` is not a token count (a JSON integer from 0 to 1,000,000,000)",
        ),
    ],
)
def test_each_fault_of_shape_is_named(change: dict[str, Any], fault: str) -> None:
    with pytest.raises(MalformedAnswerError) as caught:
        reply_from_body({**MESSAGE, **change})

    assert str(caught.value) == fault
