"""The contract's error table, row by row, for both providers over real HTTP (issue 4)."""

from __future__ import annotations

import asyncio

import pytest

from testkit import FakeAnthropic, Step
from tests.providers.support import API_KEY, REQUEST, SYSTEM_PROMPT, USER_MESSAGE, Harness
from worker.contract import ErrorCode
from worker.providers import ProviderError
from worker.providers.anthropic import AnthropicProvider

pytestmark = pytest.mark.nats

ROWS = [
    pytest.param(Step.fault(401), ErrorCode.PROVIDER_AUTH, False, id="401"),
    pytest.param(Step.fault(403), ErrorCode.PROVIDER_AUTH, False, id="403"),
    pytest.param(Step.fault(400), ErrorCode.PROVIDER_BAD_REQUEST, False, id="400"),
    pytest.param(Step.fault(404), ErrorCode.PROVIDER_BAD_REQUEST, False, id="404"),
    pytest.param(Step.fault(413), ErrorCode.PROVIDER_BAD_REQUEST, False, id="413"),
    pytest.param(Step.fault(429), ErrorCode.PROVIDER_RATE_LIMITED, True, id="429"),
    pytest.param(Step.fault(529), ErrorCode.PROVIDER_UNAVAILABLE, True, id="529"),
    pytest.param(Step.fault(500), ErrorCode.PROVIDER_UNAVAILABLE, True, id="500"),
    pytest.param(Step.fault(502), ErrorCode.PROVIDER_UNAVAILABLE, True, id="502"),
    pytest.param(Step.fault(503), ErrorCode.PROVIDER_UNAVAILABLE, True, id="503"),
    pytest.param(Step.drop(), ErrorCode.PROVIDER_UNAVAILABLE, True, id="connection-reset"),
    # docs/contract.md §4: "other 4xx bad request", whatever the status.
    pytest.param(Step.fault(409), ErrorCode.PROVIDER_BAD_REQUEST, False, id="409-other-4xx"),
    pytest.param(Step.fault(418), ErrorCode.PROVIDER_BAD_REQUEST, False, id="418-other-4xx"),
    pytest.param(Step.fault(422), ErrorCode.PROVIDER_BAD_REQUEST, False, id="422-other-4xx"),
    pytest.param(Step.garbage(), ErrorCode.PROVIDER_ERROR, False, id="200-not-json-anything-else"),
]


async def _error_of(harness: Harness) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await harness.provider.complete(REQUEST)
    return caught.value


def _assert_clean(message: str) -> None:
    for secret in (API_KEY, SYSTEM_PROMPT, USER_MESSAGE):
        assert secret not in message


@pytest.mark.parametrize(("step", "code", "retryable"), ROWS)
async def test_each_failure_maps_to_its_code(harness: Harness, step: Step, code: ErrorCode, retryable: bool) -> None:
    harness.fake.script(step)

    error = await _error_of(harness)

    assert (error.code, error.retryable) == (code, retryable)
    assert error.usage is None
    _assert_clean(error.message)
    # The pool has one connection: the failed call gave it back, so the next call goes through.
    async with asyncio.timeout(5):
        reply = await harness.provider.complete(REQUEST)
    assert reply.text == "Hello from the fake provider."


async def test_connection_refused_is_unavailable(harness: Harness) -> None:
    await harness.fake.pause()

    error = await _error_of(harness)

    assert (error.code, error.retryable) == (ErrorCode.PROVIDER_UNAVAILABLE, True)
    assert "reached" in error.message
    await harness.fake.resume()
    assert (await harness.provider.complete(REQUEST)).text


async def test_down_provider_is_unavailable(harness: Harness) -> None:
    harness.fake.config.down = True

    error = await _error_of(harness)

    assert (error.code, error.retryable) == (ErrorCode.PROVIDER_UNAVAILABLE, True)
    assert harness.fake.stats.drops == 1


async def test_unknown_model_is_a_bad_request(harness: Harness) -> None:
    harness.fake.config.models = ("some-other-model",)

    error = await _error_of(harness)

    assert (error.code, error.retryable) == (ErrorCode.PROVIDER_BAD_REQUEST, False)
    assert REQUEST.model in error.message
    assert harness.fake.stats.by_status == {404: 1}


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        pytest.param(Step.fault(429, retry_after=7), 7.0, id="seconds"),
        pytest.param(Step.fault(529, retry_after=1.5, retry_after_format="ms"), 1.5, id="retry-after-ms"),
        pytest.param(Step.fault(503, retry_after=30, retry_after_format="date"), 30.0, id="http-date"),
        pytest.param(Step.fault(429), None, id="absent"),
    ],
)
async def test_retry_after_is_read_in_every_form(harness: Harness, step: Step, expected: float | None) -> None:
    harness.fake.script(step)

    error = await _error_of(harness)

    assert error.retryable
    if expected is None:
        assert error.retry_after is None
    else:
        assert error.retry_after == pytest.approx(expected, abs=1.5)


async def test_the_providers_own_error_text_is_kept_but_an_echoed_prompt_is_redacted(harness: Harness) -> None:
    harness.fake.script(Step.fault(400, message=f"prompt is too long: {USER_MESSAGE!r}"))

    error = await _error_of(harness)

    assert "prompt is too long" in error.message
    assert "[redacted]" in error.message
    _assert_clean(error.message)


async def test_an_echoed_api_key_is_redacted(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider
) -> None:
    fake_anthropic.script(Step.fault(403, message=f"key {API_KEY} may not use this model"))

    with pytest.raises(ProviderError) as caught:
        await anthropic_provider.complete(REQUEST)

    assert caught.value.code == ErrorCode.PROVIDER_AUTH
    assert "[redacted] may not use this model" in caught.value.message
    _assert_clean(caught.value.message)


async def test_a_wrong_api_key_is_refused_as_auth(fake_anthropic: FakeAnthropic) -> None:
    provider = AnthropicProvider(api_key="sk-ant-wrong-key-123456", base_url=fake_anthropic.url, concurrency=1)
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(REQUEST)
    finally:
        await provider.aclose()

    assert (caught.value.code, caught.value.retryable) == (ErrorCode.PROVIDER_AUTH, False)
    assert "sk-ant-wrong-key-123456" not in caught.value.message
