"""Anthropic through the real SDK against the fake Messages API: what is sent and what is read back."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.providers.conftest import API_KEY, REQUEST, SYSTEM_PROMPT, USER_MESSAGE
from worker.providers import ProviderError
from worker.providers.anthropic import AnthropicProvider
from worker.testing import FakeAnthropic, Step


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
