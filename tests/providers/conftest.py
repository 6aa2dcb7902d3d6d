"""Providers against the fake servers over real loopback HTTP: the SDK and httpx run for real."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from testkit import FakeAnthropic, FakeConfig, FakeOllama, FakeOpenAI
from tests.providers.support import API_KEY, Harness
from worker.providers import Provider
from worker.providers.anthropic import AnthropicProvider
from worker.providers.ollama import OllamaProvider
from worker.providers.openai import OpenAIProvider


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(FakeConfig(api_key=API_KEY)) as fake:
        yield fake


@pytest.fixture
async def fake_ollama() -> AsyncIterator[FakeOllama]:
    async with FakeOllama() as fake:
        yield fake


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(FakeConfig(api_key=API_KEY)) as fake:
        yield fake


@pytest.fixture
async def anthropic_provider(fake_anthropic: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(api_key=API_KEY, base_url=fake_anthropic.url, concurrency=4)
    yield provider
    await provider.aclose()


@pytest.fixture
async def ollama_provider(fake_ollama: FakeOllama) -> AsyncIterator[OllamaProvider]:
    provider = OllamaProvider(host=fake_ollama.url, concurrency=4)
    yield provider
    await provider.aclose()


@pytest.fixture
async def openai_provider(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(api_key=API_KEY, base_url=fake_openai.base_url, concurrency=4)
    yield provider
    await provider.aclose()


@pytest.fixture(params=["anthropic", "openai", "ollama"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Each provider with its own fake; a pool of one connection, so a leaked connection would stall the next call."""
    if request.param == "anthropic":
        async with FakeAnthropic(FakeConfig(api_key=API_KEY)) as fake:
            provider: Provider = AnthropicProvider(api_key=API_KEY, base_url=fake.url, concurrency=1)
            yield Harness(fake, provider)
            await provider.aclose()
    elif request.param == "openai":
        async with FakeOpenAI(FakeConfig(api_key=API_KEY)) as fake:
            provider = OpenAIProvider(api_key=API_KEY, base_url=fake.base_url, concurrency=1)
            yield Harness(fake, provider)
            await provider.aclose()
    else:
        async with FakeOllama() as fake:
            provider = OllamaProvider(host=fake.url, concurrency=1)
            yield Harness(fake, provider)
            await provider.aclose()
