"""Providers through `Pipeline`: usage and billing carried into the result, retries, timeouts, a missing key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import orjson
import pytest

from catalog import default_catalog
from testkit import FakeAnthropic, FakeOllama, FakeOpenAI, FakeServer, Step
from tests.providers.support import API_KEY, SYSTEM_PROMPT, USER_MESSAGE
from worker.contract import ErrorCode
from worker.job import Job, RunRef
from worker.pipeline import Pipeline, Retry
from worker.providers import Provider, RetryPolicy
from worker.providers.registry import build_providers, close_providers
from worker.result import ResultBilling, RunResult
from worker.settings import Settings

pytestmark = pytest.mark.nats

FAST = RetryPolicy(base=0.01, cap=0.05, max_calls=5)


def _job(tier: str, model: str | None, *, timeout_secs: int = 30) -> Job:
    ref = RunRef(
        run_id="run-1",
        job_id="job-1",
        agent_id="agent-1",
        user_id="user-1",
        tier=tier,
        requested_model=model,
        reply_to=None,
    )
    return Job(
        ref=ref,
        agent_id="agent-1",
        user_id="user-1",
        tier=tier,
        system_prompt=SYSTEM_PROMPT,
        user_message=USER_MESSAGE,
        timeout_secs=timeout_secs,
        max_tokens=4096,
    )


@pytest.fixture
async def providers(
    fake_anthropic: FakeAnthropic, fake_ollama: FakeOllama, fake_openai: FakeOpenAI
) -> AsyncIterator[dict[str, Provider]]:
    settings = Settings.from_env(
        {
            "ANTHROPIC_API_KEY": API_KEY,
            "ANTHROPIC_BASE_URL": fake_anthropic.url,
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": fake_openai.base_url,
            "OLLAMA_HOST": fake_ollama.url,
        }
    )
    built = build_providers(settings, concurrency=4)
    yield built
    await close_providers(built)


@pytest.fixture
def pipeline(providers: dict[str, Provider]) -> Pipeline:
    return Pipeline(catalog=default_catalog(), providers=providers, worker_id="worker-test", retry=FAST)


async def _run(pipeline: Pipeline, job: Job, *, final: bool = True) -> RunResult:
    result = await pipeline.run(job, attempt=1, final=final)
    assert isinstance(result, RunResult)
    return result


async def test_anthropic_usage_with_cache_fields_is_carried_and_billed(
    pipeline: Pipeline, fake_anthropic: FakeAnthropic
) -> None:
    usage = {
        "input_tokens": 812,
        "output_tokens": 240,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 50,
    }
    fake_anthropic.script(Step.reply("Summary.", usage=usage))

    result = await _run(pipeline, _job("m5", "claude-sonnet-4-6"))

    assert (result.status, result.model, result.provider) == ("completed", "claude-sonnet-4-6", "anthropic")
    assert (result.output_payload, result.stop_reason, result.error) == ({"text": "Summary."}, "end_turn", None)
    assert result.usage.model_dump(by_alias=True) == {
        "inputTokens": 812,
        "outputTokens": 240,
        "cacheCreationInputTokens": 100,
        "cacheReadInputTokens": 50,
    }
    # Raw input = 812 + 100 + 50 = 962; × 3 = 2886. Output 240 × 3 = 720.
    assert (result.billing.multiplier, result.billing.billed_input_tokens) == (Decimal(3), 2886)
    assert (result.billing.billed_output_tokens, result.billing.billed_tokens) == (720, 3606)
    assert b'"multiplier":"3"' in result.to_json()


async def test_ollama_usage_is_carried_and_billed_at_its_multiplier(
    pipeline: Pipeline, fake_ollama: FakeOllama
) -> None:
    fake_ollama.script(Step.reply("Local answer.", usage={"prompt_eval_count": 57, "eval_count": 12}))

    result = await _run(pipeline, _job("access", None))

    assert (result.status, result.model, result.provider) == ("completed", "ollama/llama3.2", "ollama")
    assert (result.output_payload, result.stop_reason) == ({"text": "Local answer."}, "end_turn")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (57, 12)
    assert (result.billing.multiplier, result.billing.billed_tokens) == (Decimal(0), 0)
    (sent,) = fake_ollama.requests
    assert (sent.body["model"], sent.body["options"]) == ("llama3.2", {"num_predict": 4096})


@pytest.mark.parametrize(
    ("tier", "model", "usage", "billed"),
    [
        # GPT-5 x 8: input = 1,200 prompt (of which 1,024 cached) -> 1,200 x 8 = 9,600; output = 300 completion
        # (of which 256 reasoning) -> 300 x 8 = 2,400; total 12,000. Counting cached or reasoning tokens again
        # would bill 17,792 or 14,448.
        pytest.param(
            "m5",
            "gpt-5",
            {"prompt_tokens": 1200, "completion_tokens": 300, "cached_tokens": 1024, "reasoning_tokens": 256},
            ("8", 176, 1024, 300, 9600, 2400, 12000),
            id="gpt-5-cached-and-reasoning",
        ),
        # o3 x 20: input 333 (none cached) -> 6,660; output 1,001 (1,000 of them reasoning) -> 20,020.
        pytest.param(
            "m10",
            "o3",
            {"prompt_tokens": 333, "completion_tokens": 1001, "reasoning_tokens": 1000},
            ("20", 333, 0, 1001, 6660, 20020, 26680),
            id="o3-reasoning",
        ),
        # GPT-5 mini x 1, no *_details at all: 41 + 9.
        pytest.param(
            "m1",
            "gpt-5-mini",
            {
                "prompt_tokens": 41,
                "completion_tokens": 9,
                "prompt_tokens_details": None,
                "completion_tokens_details": None,
            },
            ("1", 41, 0, 9, 41, 9, 50),
            id="gpt-5-mini-no-details",
        ),
    ],
)
async def test_openai_usage_is_mapped_and_billed_once(
    pipeline: Pipeline,
    fake_openai: FakeOpenAI,
    tier: str,
    model: str,
    usage: dict[str, int | None],
    billed: tuple[str, int, int, int, int, int, int],
) -> None:
    fake_openai.script(Step.reply("Answer.", usage=usage))

    result = await _run(pipeline, _job(tier, model))

    assert (result.status, result.model, result.provider) == ("completed", model, "openai")
    assert (result.output_payload, result.stop_reason) == ({"text": "Answer."}, "end_turn")
    multiplier, uncached, cached, output, billed_in, billed_out, total = billed
    assert result.usage.model_dump(by_alias=True) == {
        "inputTokens": uncached,
        "outputTokens": output,
        "cacheCreationInputTokens": 0,
        "cacheReadInputTokens": cached,
    }
    assert result.billing.multiplier == Decimal(multiplier)
    assert (result.billing.billed_input_tokens, result.billing.billed_output_tokens) == (billed_in, billed_out)
    assert result.billing.billed_tokens == total
    (sent,) = fake_openai.requests
    assert (sent.body["model"], sent.body["max_completion_tokens"]) == (model, 4096)


async def test_openai_insufficient_quota_fails_at_once_and_is_not_handed_back(
    pipeline: Pipeline, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Step.fault(429, error_code="insufficient_quota", retry_after=0.1), Step.reply("too late"))

    result = await _run(pipeline, _job("m5", "gpt-5"), final=False)

    assert (result.status, result.provider) == ("failed", "openai")
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == (ErrorCode.PROVIDER_AUTH, False)
    assert result.billing.billed_tokens == 0
    assert fake_openai.stats.calls == 1


async def test_a_malformed_openai_answer_fails_and_bills_its_valid_usage(
    pipeline: Pipeline, fake_openai: FakeOpenAI
) -> None:
    body = {"object": "chat.completion", "choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 7}}
    fake_openai.script(Step.garbage(orjson.dumps(body).decode()))

    result = await _run(pipeline, _job("m5", "gpt-5"), final=False)

    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == (ErrorCode.PROVIDER_ERROR, False)
    # 100 x 8 + 7 x 8
    assert (result.usage.input_tokens, result.usage.output_tokens, result.billing.billed_tokens) == (100, 7, 856)
    assert fake_openai.stats.calls == 1


async def test_a_transient_429_then_529_ends_completed(pipeline: Pipeline, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(Step.fault(429, retry_after=0.2), Step.fault(529), Step.reply("ok"))

    result = await _run(pipeline, _job("m1", "claude-haiku-4-5-20251001"))

    assert (result.status, result.output_payload) == ("completed", {"text": "ok"})
    assert fake_anthropic.stats.calls == 3


async def test_a_retryable_error_hands_the_job_back_until_the_last_delivery(
    pipeline: Pipeline, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.config.fault_rate = 1.0
    fake_anthropic.config.fault_statuses = (429,)
    fake_anthropic.config.retry_after = 40.0  # past the job's 30 s: no wait is started inside the attempt

    handed_back = await pipeline.run(_job("m5", "claude-sonnet-4-6"), attempt=1, final=False)
    last = await _run(pipeline, _job("m5", "claude-sonnet-4-6"), final=True)

    assert isinstance(handed_back, Retry)
    assert handed_back.delay >= 40.0
    assert handed_back.error.code == ErrorCode.PROVIDER_RATE_LIMITED
    assert last.status == "failed"
    assert last.error is not None
    assert (last.error.code, last.error.retryable) == (ErrorCode.PROVIDER_RATE_LIMITED, True)
    assert fake_anthropic.stats.calls == 2


async def test_a_non_retryable_error_fails_the_run(pipeline: Pipeline, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(Step.fault(401))

    result = await _run(pipeline, _job("m5", "claude-sonnet-4-6"), final=False)

    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == (ErrorCode.PROVIDER_AUTH, False)
    assert (result.billing.billed_tokens, result.output_payload) == (0, None)


@pytest.mark.parametrize("provider", ["anthropic", "openai", "ollama"])
async def test_timeout_secs_ends_the_run_timed_out_and_cancels_the_request(
    pipeline: Pipeline, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI, fake_ollama: FakeOllama, provider: str
) -> None:
    fake: FakeServer = {"anthropic": fake_anthropic, "openai": fake_openai, "ollama": fake_ollama}[provider]
    fake.script(Step.hang())
    model = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-5", "ollama": "ollama/mistral"}[provider]
    job = _job("m5", model, timeout_secs=1)

    result = await _run(pipeline, job, final=False)

    assert (result.status, result.provider) == ("timed_out", provider)
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == (ErrorCode.TIMEOUT, False)
    assert 1000 <= result.duration_ms < 3000
    assert fake.stats.calls == 1
    async with asyncio.timeout(5):
        await fake.wait_until(lambda s: s.cancelled == 1)


@pytest.mark.parametrize(("provider", "model"), [("anthropic", "claude-sonnet-4-6"), ("openai", "gpt-5")])
async def test_no_key_means_provider_not_configured(fake_ollama: FakeOllama, provider: str, model: str) -> None:
    # Pointed at a base URL, but without a key the provider is not built: the call must not be attempted.
    env = {
        "OLLAMA_HOST": fake_ollama.url,
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    }
    providers = build_providers(Settings.from_env(env))
    pipeline = Pipeline(catalog=default_catalog(), providers=providers, worker_id="worker-test", retry=FAST)
    try:
        cloud = await _run(pipeline, _job("m5", model))
        local = await _run(pipeline, _job("m5", "ollama/llama3.1"))
    finally:
        await close_providers(providers)

    assert sorted(providers) == ["ollama"]
    assert (cloud.status, cloud.provider, cloud.model) == ("failed", provider, model)
    assert cloud.error is not None
    assert (cloud.error.code, cloud.error.retryable) == (ErrorCode.PROVIDER_NOT_CONFIGURED, False)
    assert cloud.billing.billed_tokens == 0
    assert local.status == "completed"


async def test_a_malformed_answer_fails_once_and_bills_the_usage_it_validly_reported(
    pipeline: Pipeline, fake_anthropic: FakeAnthropic
) -> None:
    usage = {"input_tokens": 100, "output_tokens": 40, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    fake_anthropic.script(Step.reply(usage=usage, patch={"content": [{"type": "text"}]}))

    result = await _run(pipeline, _job("m10", "claude-opus-4-6"), final=False)

    assert (result.status, result.output_payload) == ("failed", None)
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == (ErrorCode.PROVIDER_ERROR, False)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (100, 40)
    assert result.billing.billed_tokens == 140 * 15
    assert fake_anthropic.stats.calls == 1


async def test_a_usage_count_of_2_63_minus_1_on_opus_fails_once_billed_zero_and_serialises(
    pipeline: Pipeline, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Step.reply(usage={"input_tokens": 10, "output_tokens": 2**63 - 1}))

    result = await _run(pipeline, _job("m10", "claude-opus-4-6"), final=False)

    assert result.error is not None
    assert (result.status, result.error.code, result.error.retryable) == ("failed", ErrorCode.PROVIDER_ERROR, False)
    assert (result.usage.output_tokens, result.billing.billed_tokens) == (0, 0)
    assert RunResult.from_json(result.to_json()).to_json() == result.to_json()
    assert fake_anthropic.stats.calls == 1


async def test_a_bill_beyond_64_bits_is_written_exactly(pipeline: Pipeline) -> None:
    # orjson writes no integer beyond 64 bits; a catalog multiplier large enough to make one must not stop the job.
    completed = await _run(pipeline, _job("m5", "claude-sonnet-4-6"))
    huge = ResultBilling(
        multiplier=Decimal(10**11), billed_input_tokens=10**20, billed_output_tokens=0, billed_tokens=10**20
    )
    result = completed.model_copy(update={"billing": huge})

    body = result.to_json()

    assert b'"billing":{"multiplier":"100000000000","billedInputTokens":100000000000000000000,' in body
    assert RunResult.from_json(body).to_json() == body


async def test_each_key_builds_only_its_own_provider() -> None:
    providers = build_providers(Settings.from_env({"OPENAI_API_KEY": API_KEY}))
    try:
        assert sorted(providers) == ["ollama", "openai"]
    finally:
        await close_providers(providers)
