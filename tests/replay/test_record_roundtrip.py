"""`--record` against the fake providers over real HTTP, then replayed from what it wrote: the same results."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from testkit import FakeAnthropic, FakeConfig, FakeOllama, FakeOpenAI, Step
from testkit.process import run_command
from tests.replay.support import normalised
from worker.commands.demo import SAMPLES
from worker.providers.exchange import read_recording

pytestmark = pytest.mark.nats

JOBS = [*sorted((Path(__file__).parents[1] / "fixtures" / "jobs").glob("[0-9]*.json")), SAMPLES]
API_KEY = "sk-ant-roundtrip-test"


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeAnthropic, FakeOllama, FakeOpenAI]]:
    # Cache tokens on every Anthropic answer; cached and reasoning tokens on every OpenAI one; Ollama knows two
    # models, so `mistral` gets its real 404.
    anthropic_config = FakeConfig(
        api_key=API_KEY, usage={"cache_creation_input_tokens": 5, "cache_read_input_tokens": 40}
    )
    openai_usage: dict[str, int | None] = {
        "prompt_tokens": 900,
        "cached_tokens": 768,
        "completion_tokens": 300,
        "reasoning_tokens": 256,
    }
    async with (
        FakeAnthropic(anthropic_config) as anthropic,
        FakeOllama(FakeConfig(models=("llama3.2", "llama3.1"))) as ollama,
        FakeOpenAI(FakeConfig(api_key=API_KEY, usage=openai_usage)) as openai,
    ):
        yield anthropic, ollama, openai


async def replay(*args: str | Path, env: dict[str, str]) -> list[dict[str, Any]]:
    done = await run_command("replay", *map(str, args), *map(str, JOBS), env=env)
    assert done.code == 0, done.err
    return [normalised(orjson.loads(line)) for line in done.out.splitlines()]


async def test_recorded_live_exchanges_replay_to_the_same_results(
    fakes: tuple[FakeAnthropic, FakeOllama, FakeOpenAI], tmp_path: Path
) -> None:
    anthropic, ollama, openai = fakes
    # A transient 429 first: retried by the worker's policy, and not written, since it says nothing of the request.
    anthropic.script(Step.fault(429, message="slow down", retry_after=0))
    ollama.script(Step.reply("cut short", stop_reason="length"))
    live_env = {
        "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_BASE_URL": anthropic.url,
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": openai.base_url,
        "OLLAMA_HOST": ollama.url,
    }
    recordings = tmp_path / "recorded"

    live = await replay("--live", "--record", recordings, "--concurrency", "1", env=live_env)
    replayed = await replay("--recordings", recordings, env={})

    assert replayed == live
    assert anthropic.stats.by_status.get(429) == 1
    by_run = {result["runId"]: result for result in live}
    assert by_run["demo-teams-cached"]["usage"]["cacheReadInputTokens"] == 40
    assert by_run["demo-m10-o3"]["usage"] == {
        "inputTokens": 132,
        "outputTokens": 300,
        "cacheCreationInputTokens": 0,
        "cacheReadInputTokens": 768,
    }
    # 900 x 20 + 300 x 20
    assert by_run["demo-m10-o3"]["billing"]["billedTokens"] == 24_000
    assert by_run["demo-access-mistral"]["error"]["code"] == "provider_bad_request"
    assert "cut short" in {r["outputPayload"]["text"] for r in live if r["provider"] == "ollama" and r["outputPayload"]}
    assert "max_tokens" in {r["stopReason"] for r in live if r["provider"] == "ollama"}
    files = sorted(recordings.glob("*.json"))
    providers_called = sum(1 for r in live if r["provider"] is not None)
    assert 0 < len(files) <= providers_called
    kinds = {(rec.provider, rec.error is not None) for rec in map(read_recording, files)}
    assert kinds == {("anthropic", False), ("openai", False), ("ollama", False), ("ollama", True)}
