"""Hostile job data and misbehaving providers against a real `agent-worker run` and a real nats-server (issue 11).

Each test publishes jobs as a hostile publisher would (bytes written by hand where JSON libraries would not write
them) to one `agent-worker run` process whose providers are the fakes, answering in the real API shapes and
spoiled in one place. What is checked is what the contract promises outside the process: the stored results,
the dead letters, the provider calls, and the process's own log lines.

- Bounded echoes (docs/contract.md §2, §6): 256-character limits, at most 64 characters of a job value in any message or
  log field, even for a 0.5 MB model id.
- Exact big integers (§2): `maxTokens` 100000000000000000000 is an integer; payload integers beyond 64 bits
  reach the model digit for digit.
- Malformed answers (docs/contract.md §4): one call, one `failed` result with `provider_error`, its valid usage billed,
  never run again; an answer cut short by its connection is retried.
- Provider error text (§11): no 20 consecutive characters of the prompt texts in a result or a log line.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client

from catalog import default_catalog
from testkit import FakeAnthropic, FakeConfig, FakeOllama, Step
from testkit.process import WorkerProcess
from tests.worker.support import ResultWatch, dead_letters, job, publish_job, stored_count, wait_until_acked
from worker.embedded import NatsServer

pytestmark = pytest.mark.system

API_KEY = "sk-ant-hostile-data-0123456789"
WINDOW = 20
# Longer than any cut, with what JSON escapes: quotes, newlines, backslashes, non-ASCII, an emoji.
PROMPT = "".join(f'Step {n}: write "naïve café" to C:\\data\\{n}\n🙂 then stop. ' for n in range(60))
SYSTEM = 'You are "Scout" — a terse agent.\nNever reveal C:\\secrets\\ to anyone. ' * 4


@pytest.fixture
async def anthropic() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(FakeConfig(api_key=API_KEY)) as fake:
        yield fake


@pytest.fixture
async def ollama() -> AsyncIterator[FakeOllama]:
    async with FakeOllama() as fake:
        yield fake


@pytest.fixture
async def worker(
    nats_server: NatsServer, anthropic: FakeAnthropic, ollama: FakeOllama, tmp_path: Path
) -> AsyncIterator[WorkerProcess]:
    settings = {
        "NATS_URL": nats_server.url,
        "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_BASE_URL": anthropic.base_url,
        "OLLAMA_HOST": ollama.url,
        "WORKER_RETRY_BASE_SECS": "0.01",
        "WORKER_RETRY_CAP_SECS": "0.05",
        "WORKER_REDELIVERY_BASE_SECS": "0.2",
        "WORKER_REDELIVERY_CAP_SECS": "0.5",
    }
    process = await WorkerProcess("hostile-data", settings, tmp_path).start()
    yield process
    await process.close()


def _raw(body: dict[str, Any], **raw_fields: str) -> bytes:
    """`body` as JSON with each named `data` field's value replaced by raw JSON text."""
    data = {**body["data"], **{name: f"@{name}@" for name in raw_fields}}
    text = json.dumps({**body, "data": data}, ensure_ascii=False)
    for name, raw in raw_fields.items():
        text = text.replace(f'"@{name}@"', raw)
    return text.encode()


async def _run(client: Client, results: ResultWatch, body: dict[str, Any] | bytes) -> dict[str, Any]:
    """Publish one job and wait for its one stored result."""
    run_id = (body if isinstance(body, dict) else orjson.loads(body))["data"]["runId"]
    await publish_job(client, body)
    return await results.one(run_id, within=30)


def _log_lines(worker: WorkerProcess) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in worker.log_path.read_text().splitlines() if line.startswith("{")]


def _prompt_windows(*prompts: str) -> set[str]:
    """Every 20-character stretch of the prompts, plain and JSON-escaped (with and without non-ASCII escapes)."""
    forms = [form for p in prompts for form in (p, json.dumps(p)[1:-1], json.dumps(p, ensure_ascii=False)[1:-1])]
    return {form[i : i + WINDOW] for form in forms for i in range(len(form) - WINDOW + 1)}


def _leaks(text: str, windows: set[str]) -> list[str]:
    return [text[i : i + WINDOW] for i in range(len(text) - WINDOW + 1) if text[i : i + WINDOW] in windows]


async def test_long_job_strings_are_echoed_up_to_256_characters_and_quoted_up_to_64(
    worker: WorkerProcess, client: Client, results: ResultWatch, anthropic: FakeAnthropic
) -> None:
    huge_model = "m" * 524_288
    huge = job(model=huge_model)
    huge["id"] = "j" * 300
    huge_result = await _run(client, results, huge)
    tier_256 = await _run(client, results, job(tier="T" * 256))
    model_256 = await _run(client, results, job(model="x" * 256))
    agent_257 = await _run(client, results, job(agentId="a" * 257))
    not_allowed = await _run(client, results, job(tier="m1", model="claude-opus-4-6"))

    assert huge_result["status"] == "rejected"
    assert (huge_result["jobId"], huge_result["requestedModel"]) == (None, None)
    assert huge_result["error"] == {
        "code": "invalid_job",
        "message": "Invalid job: model must be a string of at most 256 characters, or absent or null, "
        "not a string of 524,288 characters.",
        "retryable": False,
    }
    quoted_t = f"'{'T' * 64}'… (256 characters)"
    assert (tier_256["tier"], tier_256["error"]["code"]) == ("T" * 256, "unknown_tier")
    assert tier_256["error"]["message"] == f"Unknown tier {quoted_t}."
    assert (model_256["requestedModel"], model_256["error"]["code"]) == ("x" * 256, "unknown_model")
    assert model_256["error"]["message"] == f"Unknown model '{'x' * 64}'… (256 characters)."
    assert (agent_257["agentId"], agent_257["error"]["code"]) == (None, "invalid_job")
    assert not_allowed["error"]["message"] == "Model Claude Opus requires the m10 plan or higher."
    assert anthropic.stats.calls == 0

    lines = _log_lines(worker)
    assert worker.alive
    tier_lines = [line for line in lines if line.get("runId") == tier_256["runId"]]
    assert tier_lines
    assert all(line["tier"] == "T" * 63 + "…" for line in tier_lines)
    for line in lines:
        assert all(len(value) <= 200 for value in line.values() if isinstance(value, str)), line["event"]


async def test_integers_beyond_64_bits_are_exact(
    worker: WorkerProcess, client: Client, results: ResultWatch, anthropic: FakeAnthropic
) -> None:
    # What JSON.stringify(1e20) writes: an integer, lowered to the model's output cap.
    capped = job()
    capped_result = await _run(client, results, _raw(capped, maxTokens="100000000000000000000"))
    payload = job()
    payload_result = await _run(
        client,
        results,
        _raw(payload, inputPayload='{"n": 123456789012345678901234567890, "neg": -9223372036854775809, "t": "é"}'),
    )
    float_timeout = await _run(client, results, _raw(job(), timeoutSecs="300.0"))
    nan = job()
    await publish_job(client, _raw(nan, maxTokens="NaN"))
    await wait_until_acked(client)

    assert (capped_result["status"], payload_result["status"]) == ("completed", "completed")
    capped_call, payload_call = list(anthropic.requests)
    assert capped_call.body["max_tokens"] == default_catalog().models["claude-sonnet-4-6"].output_cap
    assert payload_call.body["messages"] == [
        {"role": "user", "content": '{"n":123456789012345678901234567890,"neg":-9223372036854775809,"t":"é"}'}
    ]
    assert float_timeout["error"]["message"] == (
        "Invalid job: timeoutSecs must be a JSON integer from 1 to 3600, or absent or null, not 300.0."
    )
    [letter] = await dead_letters(client)
    assert letter.headers is not None
    assert letter.headers["Maschina-Dlq-Reason"] == "not_json"
    assert orjson.loads(letter.data.replace(b"NaN", b"1"))["data"]["runId"] == nan["data"]["runId"]
    assert results.by_run.get(nan["data"]["runId"]) is None


async def test_malformed_answers_fail_once_billing_valid_usage_and_cut_answers_are_retried(
    worker: WorkerProcess, client: Client, results: ResultWatch, anthropic: FakeAnthropic, ollama: FakeOllama
) -> None:
    usage = {"input_tokens": 100, "output_tokens": 40, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    anthropic.script(Step.reply(usage=usage, patch={"content": [{"type": "text"}]}))
    no_text = await _run(client, results, job())
    anthropic.script(Step.reply(usage={**usage, "output_tokens": 2**63 - 1}))
    overflow = await _run(client, results, job(tier="m10", model="claude-opus-4-6"))
    anthropic.script(Step.garbage('{"type": "error", "error": {"type": "api_error", "message": "boom"}}'))
    error_in_200 = await _run(client, results, job())
    anthropic.script(Step.truncated())
    cut_then_whole = await _run(client, results, job())
    ollama.config.stream_always = True
    ollama.script(Step.stream_error("llama runner process has terminated"))
    stream_error = await _run(client, results, job(tier="access", model="ollama/llama3.2"))
    await wait_until_acked(client)

    assert anthropic.stats.calls == 5  # one call each, and the cut answer once more
    assert ollama.stats.calls == 1
    for result in (no_text, overflow, error_in_200, stream_error):
        assert (result["status"], result["attempt"], result["outputPayload"]) == ("failed", 1, None)
        assert (result["error"]["code"], result["error"]["retryable"]) == ("provider_error", False)
        assert len(results.by_run[result["runId"]]) == 1
        assert await stored_count(client, result["runId"]) == 1
    assert no_text["usage"] == {
        "inputTokens": 100,
        "outputTokens": 40,
        "cacheCreationInputTokens": 0,
        "cacheReadInputTokens": 0,
    }
    assert no_text["billing"]["billedTokens"] == 140 * 3
    assert (overflow["usage"]["outputTokens"], overflow["billing"]["billedTokens"]) == (0, 0)
    assert error_in_200["error"]["message"].endswith("it is an error (api_error: boom)")
    assert stream_error["error"]["message"] == "Ollama: reported an error: llama runner process has terminated"
    assert (cut_then_whole["status"], cut_then_whole["attempt"]) == ("completed", 1)
    assert worker.alive


async def test_provider_error_text_that_quotes_the_prompt_reaches_no_result_and_no_log(
    worker: WorkerProcess, client: Client, results: ResultWatch, anthropic: FakeAnthropic, ollama: FakeOllama
) -> None:
    sent = {"model": "claude-sonnet-4-6", "system": SYSTEM, "messages": [{"role": "user", "content": PROMPT}]}
    anthropic.script(Step.fault(400, message=f"invalid request body: {json.dumps(sent)}"))
    escaped = await _run(client, results, job(systemPrompt=SYSTEM, inputPayload={"message": PROMPT}))
    anthropic.script(Step.fault(400, message=f"prompt too long near: {PROMPT[1500:2200]}"))
    middle = await _run(client, results, job(systemPrompt=SYSTEM, inputPayload={"message": PROMPT}))
    ollama.script(Step.fault(400, message=f"invalid character in {json.dumps(sent, ensure_ascii=False)}"))
    local = await _run(
        client,
        results,
        job(tier="access", model="ollama/llama3.2", systemPrompt=SYSTEM, inputPayload={"message": PROMPT}),
    )

    windows = _prompt_windows(PROMPT, SYSTEM)
    assert _leaks(json.dumps(sent), windows)  # the check sees an unscrubbed quote
    for result, prefix in (
        (escaped, "Anthropic answered HTTP 400: invalid_request_error: invalid request body: "),
        (middle, "Anthropic answered HTTP 400: invalid_request_error: prompt too long near:"),
        (local, "Ollama answered HTTP 400: invalid character in "),
    ):
        assert result["error"]["code"] == "provider_bad_request"
        assert result["error"]["message"].startswith(prefix)
        assert _leaks(orjson.dumps(result).decode(), windows) == []
    log = worker.log_path.read_text()
    assert _leaks(log, windows) == []
    assert API_KEY not in log
