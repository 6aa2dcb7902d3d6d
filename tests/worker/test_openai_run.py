"""`agent-worker run` against the fake OpenAI Chat Completions API over real HTTP: gated, called, billed, stored.

One replica process, configured only by the environment (`OPENAI_API_KEY`, `OPENAI_BASE_URL`), as production
runs it; jobs published through JetStream as the API publishes them.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client

from testkit import FakeConfig, FakeOpenAI, Step
from testkit.process import WorkerProcess
from tests.worker.support import ResultWatch, job, publish_job, stored_count, wait_until_acked
from worker.embedded import NatsServer

pytestmark = pytest.mark.system

API_KEY = "sk-proj-e2e-never-logged-0123456789"
SYSTEM_PROMPT = "SYSTEM-PROMPT-never-logged: you are terse."
USER_MESSAGE = "USER-MESSAGE-never-logged: plan the migration."


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    usage: dict[str, int | None] = {
        "prompt_tokens": 1200,
        "cached_tokens": 1024,
        "completion_tokens": 300,
        "reasoning_tokens": 256,
    }
    async with FakeOpenAI(FakeConfig(api_key=API_KEY, usage=usage)) as fake:
        yield fake


@pytest.fixture
async def replica(nats_server: NatsServer, fake: FakeOpenAI, tmp_path: Path) -> AsyncIterator[WorkerProcess]:
    settings = {
        "NATS_URL": nats_server.url,
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": fake.base_url,
        "WORKER_RETRY_BASE_SECS": "0.05",
        "WORKER_MAX_DELIVER": "2",
    }
    process = WorkerProcess("worker-openai", settings, tmp_path)
    await process.start()
    yield process
    await process.close()


async def test_openai_jobs_through_agent_worker_run(
    replica: WorkerProcess, fake: FakeOpenAI, client: Client, results: ResultWatch
) -> None:
    prompts: dict[str, Any] = {"systemPrompt": SYSTEM_PROMPT, "inputPayload": {"message": USER_MESSAGE}}
    # In publishing order: a 429 with retry-after then an answer; out of credit; two plain answers; a refusal.
    fake.script(
        Step.fault(429, retry_after=0.2),
        Step.reply("After a wait."),
        Step.fault(429, error_code="insufficient_quota", retry_after=0.1),
    )
    retried = job(tier="m5", model="gpt-5", maxTokens=2048, **prompts)
    broke = job(tier="m5", model="gpt-5", **prompts)
    mini = job(tier="m1", model="gpt-5-mini", **prompts)
    o3 = job(tier="enterprise", model="o3", maxTokens=50_000, **prompts)
    refused = job(tier="m1", model="o3", **prompts)
    for body in (retried, broke):
        # One at a time, so that the scripted answers meet the jobs they are meant for.
        await publish_job(client, body)
        await results.one(body["data"]["runId"], within=20)
    for body in (mini, o3, refused):
        await publish_job(client, body)
    runs = [body["data"]["runId"] for body in (retried, broke, mini, o3, refused)]
    by_run = await results.wait_for(runs, within=20)
    await wait_until_acked(client)

    first = by_run[retried["data"]["runId"]]
    assert (first["status"], first["provider"], first["model"], first["stopReason"]) == (
        "completed",
        "openai",
        "gpt-5",
        "end_turn",
    )
    assert first["outputPayload"] == {"text": "After a wait."}
    assert first["usage"] == {
        "inputTokens": 176,
        "outputTokens": 300,
        "cacheCreationInputTokens": 0,
        "cacheReadInputTokens": 1024,
    }
    # 1,200 x 8 + 300 x 8: cached and reasoning tokens each counted once.
    assert first["billing"] == {
        "multiplier": "8",
        "billedInputTokens": 9600,
        "billedOutputTokens": 2400,
        "billedTokens": 12000,
    }
    out_of_credit = by_run[broke["data"]["runId"]]
    assert (out_of_credit["status"], out_of_credit["attempt"]) == ("failed", 1)
    assert out_of_credit["error"]["code"] == "provider_auth"
    assert out_of_credit["error"]["retryable"] is False
    assert out_of_credit["billing"]["billedTokens"] == 0
    # 1,500 raw tokens at x1 and x20.
    assert by_run[mini["data"]["runId"]]["billing"]["billedTokens"] == 1500
    assert by_run[o3["data"]["runId"]]["billing"]["billedTokens"] == 30_000
    denied = by_run[refused["data"]["runId"]]
    assert (denied["status"], denied["provider"]) == ("rejected", None)
    assert denied["error"]["message"] == "Model o3 requires the m10 plan or higher."
    for run_id in runs:
        assert await stored_count(client, run_id) == 1

    # Four jobs reached the provider: the first twice, the one out of credit only once.
    sent = [request.body for request in fake.requests]
    assert len(sent) == 5
    assert [body["model"] for body in sent[:3]] == ["gpt-5"] * 3
    assert sorted(body["model"] for body in sent[3:]) == ["gpt-5-mini", "o3"]
    assert all(body["messages"][0] == {"role": "developer", "content": SYSTEM_PROMPT} for body in sent)
    assert [body["max_completion_tokens"] for body in sent[:3]] == [2048, 2048, 4096]
    # The o3 job asked for 50,000: lowered to the catalog's output cap.
    assert next(body for body in sent if body["model"] == "o3")["max_completion_tokens"] == 16_384
    assert all(request.headers["authorization"] == f"Bearer {API_KEY}" for request in fake.requests)

    replica.signal(signal.SIGTERM)
    assert await replica.wait(within=15) == 0
    log = replica.log_path.read_text()
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "provider_retry" and line.get("provider") == "openai" for line in lines)
    for secret in (API_KEY, SYSTEM_PROMPT, USER_MESSAGE):
        assert secret not in log
