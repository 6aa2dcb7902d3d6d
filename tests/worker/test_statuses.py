"""Each result status end to end through a real nats-server, checked field by field against docs/contract.md §6."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from nats.aio.client import Client

from catalog import Usage
from tests.contract import BILLING_FIELDS, RESULT_FIELDS, USAGE_FIELDS
from tests.worker.fakes import FakeProvider
from tests.worker.support import Listener, ResultWatch, StartWorker, job, publish_job, stored_count
from worker.contract import ErrorCode
from worker.providers.base import ProviderError

pytestmark = pytest.mark.nats

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ZERO_USAGE = dict.fromkeys(USAGE_FIELDS, 0)


def assert_contract_shape(result: dict[str, Any]) -> None:
    """Every key of docs/contract.md §6 present, nothing else, each with its JSON type."""
    assert set(result) == RESULT_FIELDS
    assert result["version"] == 1
    assert result["type"] == "agent.execute.result"
    assert isinstance(result["runId"], str)
    for key in ("jobId", "agentId", "userId", "tier", "requestedModel", "model", "provider", "stopReason"):
        assert result[key] is None or isinstance(result[key], str), key
    assert result["status"] in {"completed", "rejected", "failed", "timed_out"}
    assert set(result["usage"]) == USAGE_FIELDS
    assert all(type(value) is int for value in result["usage"].values())
    assert set(result["billing"]) == BILLING_FIELDS
    assert isinstance(result["billing"]["multiplier"], str)
    assert all(type(result["billing"][key]) is int for key in BILLING_FIELDS - {"multiplier"})
    if result["status"] == "completed":
        assert result["error"] is None
        assert isinstance(result["outputPayload"], dict)
    else:
        assert set(result["error"]) == {"code", "message", "retryable"}
        assert result["error"]["code"] in {code.value for code in ErrorCode}
        assert isinstance(result["error"]["message"], str)
        assert result["error"]["message"]
        assert isinstance(result["error"]["retryable"], bool)
        assert result["outputPayload"] is None
        assert result["stopReason"] is None
    assert type(result["attempt"]) is int
    assert result["attempt"] >= 1
    assert isinstance(result["workerId"], str)
    assert TIMESTAMP.fullmatch(result["startedAt"])
    assert TIMESTAMP.fullmatch(result["finishedAt"])
    assert type(result["durationMs"]) is int
    assert result["durationMs"] >= 0


async def test_completed_job_stores_one_billed_result_and_replies(
    start_worker: StartWorker, client: Client, results: ResultWatch, provider: FakeProvider
) -> None:
    await start_worker()
    inbox = await Listener("_INBOX.api-7.Qx3v9k").open(client)
    body = job(reply_to=inbox.subject)
    run_id = body["data"]["runId"]
    await publish_job(client, body)

    result = await results.one(run_id)
    assert_contract_shape(result)
    assert result == {
        **result,
        "jobId": body["id"],
        "runId": run_id,
        "agentId": body["data"]["agentId"],
        "userId": body["data"]["userId"],
        "tier": "m5",
        "status": "completed",
        "requestedModel": "claude-sonnet-4-6",
        "model": "claude-sonnet-4-6",
        "provider": "anthropic",
        "outputPayload": {"text": "Done."},
        "stopReason": "end_turn",
        "usage": {**ZERO_USAGE, "inputTokens": 812, "outputTokens": 240},
        "billing": {"multiplier": "3", "billedInputTokens": 2436, "billedOutputTokens": 720, "billedTokens": 3156},
        "error": None,
        "attempt": 1,
        "workerId": "worker-test-1",
    }
    reply = await inbox.json()
    assert reply == result
    assert await stored_count(client, run_id) == 1
    [call] = provider.calls
    assert call.model == "claude-sonnet-4-6"
    assert call.user_message == "Summarise the attached notes."
    assert call.system_prompt == "You are a research agent."


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"agentId": ""}, "invalid_job"),
        ({"timeoutSecs": 300.0}, "invalid_job"),
        ({"inputPayload": {"message": "x" * 100_001}}, "input_too_large"),
        ({"tier": "gold"}, "unknown_tier"),
        ({"model": "gpt-4o"}, "unknown_model"),
        ({"tier": "m1", "model": "claude-opus-4-6"}, "model_not_allowed"),
    ],
)
async def test_rejected_jobs_bill_nothing_and_never_call_the_provider(
    start_worker: StartWorker,
    client: Client,
    results: ResultWatch,
    provider: FakeProvider,
    data: dict[str, Any],
    code: str,
) -> None:
    await start_worker()
    body = job(**data)
    run_id = body["data"]["runId"]
    await publish_job(client, body)

    result = await results.one(run_id)
    assert_contract_shape(result)
    assert result["status"] == "rejected"
    assert result["error"]["code"] == code
    assert result["error"]["retryable"] is False
    assert result["model"] is None
    assert result["provider"] is None
    assert result["usage"] == ZERO_USAGE
    assert result["billing"] == {
        "multiplier": "0",
        "billedInputTokens": 0,
        "billedOutputTokens": 0,
        "billedTokens": 0,
    }
    assert provider.calls == []
    if code == "model_not_allowed":
        assert result["error"]["message"] == "Model Claude Opus requires the m10 plan or higher."


async def test_invalid_reply_to_is_rejected_and_nothing_is_sent_to_it(
    start_worker: StartWorker, client: Client, results: ResultWatch, provider: FakeProvider
) -> None:
    await start_worker()
    body = job(reply_to="maschina.results.agent.execute.steal")
    run_id = body["data"]["runId"]
    await publish_job(client, body)

    result = await results.one(run_id)
    assert_contract_shape(result)
    assert (result["status"], result["error"]["code"]) == ("rejected", "invalid_job")
    assert "replyTo" in result["error"]["message"]
    assert provider.calls == []
    # Only the stored record exists on the results subjects: no copy went to the bogus replyTo.
    assert len(results.by_run[run_id]) == 1


async def test_failed_job_reports_the_provider_error_and_bills_reported_usage(
    start_worker: StartWorker, client: Client, results: ResultWatch
) -> None:
    refusing = FakeProvider(
        errors=[
            ProviderError(
                ErrorCode.PROVIDER_BAD_REQUEST,
                "prompt is too long",
                retryable=False,
                usage=Usage(input_tokens=10, output_tokens=1),
            )
        ]
    )
    await start_worker(providers={"anthropic": refusing})
    body = job()
    await publish_job(client, body)

    result = await results.one(body["data"]["runId"])
    assert_contract_shape(result)
    assert result["status"] == "failed"
    assert result["error"] == {"code": "provider_bad_request", "message": "prompt is too long", "retryable": False}
    assert (result["model"], result["provider"]) == ("claude-sonnet-4-6", "anthropic")
    assert result["usage"]["inputTokens"] == 10
    assert result["billing"]["billedTokens"] == 33
    assert len(refusing.calls) == 1


async def test_model_without_provider_fails_provider_not_configured(
    start_worker: StartWorker, client: Client, results: ResultWatch, provider: FakeProvider
) -> None:
    await start_worker()
    body = job(tier="access", model="ollama/llama3.2")
    await publish_job(client, body)

    result = await results.one(body["data"]["runId"])
    assert_contract_shape(result)
    assert (result["status"], result["error"]["code"]) == ("failed", "provider_not_configured")
    assert (result["model"], result["provider"]) == ("ollama/llama3.2", "ollama")
    assert provider.calls == []


async def test_provider_slower_than_the_job_budget_times_out(
    start_worker: StartWorker, client: Client, results: ResultWatch
) -> None:
    never = FakeProvider(gate=asyncio.Event())
    await start_worker(providers={"anthropic": never})
    body = job(timeoutSecs=1)
    await publish_job(client, body)

    result = await results.one(body["data"]["runId"])
    assert_contract_shape(result)
    assert result["status"] == "timed_out"
    assert result["error"]["code"] == "timeout"
    assert result["error"]["retryable"] is False
    assert 1000 <= result["durationMs"] < 3000
    assert len(never.calls) == 1
