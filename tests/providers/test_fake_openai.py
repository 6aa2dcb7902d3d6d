"""The fake OpenAI Chat Completions API itself, seen with a plain HTTP client: the shapes api.openai.com answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from testkit import FakeConfig, FakeOpenAI, Step
from testkit.process import FakeProcess

pytestmark = pytest.mark.nats

CHAT: dict[str, Any] = {
    "model": "gpt-5-mini",
    "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    "max_completion_tokens": 16,
}
AUTH = {"authorization": "Bearer sk-right-0123456789"}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def test_the_completion_object_has_the_real_fields(http: httpx.AsyncClient) -> None:
    async with FakeOpenAI() as fake:
        response = await http.post(f"{fake.base_url}/chat/completions", json=CHAT, headers=AUTH)

    body = response.json()
    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")
    assert body["id"].startswith("chatcmpl-")
    assert (body["object"], body["model"], type(body["created"])) == ("chat.completion", "gpt-5-mini", int)
    (choice,) = body["choices"]
    assert (choice["index"], choice["finish_reason"], choice["logprobs"]) == (0, "stop", None)
    assert choice["message"]["role"] == "assistant"
    assert (choice["message"]["content"], choice["message"]["refusal"]) == ("Hello from the fake provider.", None)
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == 5
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


async def test_usage_overrides_go_inside_the_details_or_leave_them_out(http: httpx.AsyncClient) -> None:
    async with FakeOpenAI() as fake:
        fake.script(
            Step.reply(
                usage={"prompt_tokens": 100, "cached_tokens": 64, "completion_tokens": 40, "reasoning_tokens": 32}
            ),
            Step.reply(usage={"prompt_tokens_details": None, "completion_tokens_details": None}),
        )
        detailed = (await http.post(f"{fake.base_url}/chat/completions", json=CHAT, headers=AUTH)).json()["usage"]
        bare = (await http.post(f"{fake.base_url}/chat/completions", json=CHAT, headers=AUTH)).json()["usage"]

    assert (detailed["prompt_tokens"], detailed["completion_tokens"], detailed["total_tokens"]) == (100, 40, 140)
    assert detailed["prompt_tokens_details"]["cached_tokens"] == 64
    assert detailed["completion_tokens_details"]["reasoning_tokens"] == 32
    assert "prompt_tokens_details" not in bare
    assert "completion_tokens_details" not in bare


async def test_max_completion_tokens_cuts_the_answer_at_length(http: httpx.AsyncClient) -> None:
    async with FakeOpenAI() as fake:
        response = await http.post(
            f"{fake.base_url}/chat/completions", json={**CHAT, "max_completion_tokens": 2}, headers=AUTH
        )

    (choice,) = response.json()["choices"]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("Hello from", "length")


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (400, "invalid_request_error", None),
        (401, "invalid_request_error", "invalid_api_key"),
        (404, "invalid_request_error", "model_not_found"),
        (429, "requests", "rate_limit_exceeded"),
        (500, "server_error", None),
        (503, "server_error", None),
    ],
)
async def test_error_bodies_are_the_apis(http: httpx.AsyncClient, status: int, kind: str, code: str | None) -> None:
    async with FakeOpenAI() as fake:
        fake.script(Step.fault(status))
        response = await http.post(f"{fake.base_url}/chat/completions", json=CHAT, headers=AUTH)

    error = response.json()["error"]
    assert response.status_code == status
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == (kind, code)
    assert error["message"]


async def test_429_with_retry_after_and_insufficient_quota(http: httpx.AsyncClient) -> None:
    async with FakeOpenAI() as fake:
        fake.script(Step.fault(429, retry_after=3), Step.fault(429, error_code="insufficient_quota"))
        limited = await http.post(f"{fake.base_url}/chat/completions", json=CHAT, headers=AUTH)
        broke = await http.post(f"{fake.base_url}/chat/completions", json=CHAT, headers=AUTH)

    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert (broke.status_code, "retry-after" in broke.headers) == (429, False)
    assert broke.json()["error"]["type"] == broke.json()["error"]["code"] == "insufficient_quota"
    assert "exceeded your current quota" in broke.json()["error"]["message"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [(AUTH, 200), ({"authorization": "Bearer sk-wrong-0123456789"}, 401), ({}, 401)],
)
async def test_only_the_configured_key_is_accepted(
    http: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    async with FakeOpenAI(FakeConfig(api_key="sk-right-0123456789")) as fake:
        response = await http.post(f"{fake.base_url}/chat/completions", json=CHAT, headers=headers)

    assert response.status_code == status
    if status == 401:
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert "sk-wrong-0123456789" not in response.text


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"max_tokens": 16}, "max_tokens"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages"),
        ({"stream": True}, "stream"),
    ],
)
async def test_requests_the_api_refuses_are_400(http: httpx.AsyncClient, change: dict[str, Any], param: str) -> None:
    async with FakeOpenAI() as fake:
        response = await http.post(f"{fake.base_url}/chat/completions", json={**CHAT, **change}, headers=AUTH)

    assert (response.status_code, response.json()["error"]["param"]) == (400, param)


async def test_a_body_that_is_not_declared_json_is_refused(http: httpx.AsyncClient) -> None:
    async with FakeOpenAI() as fake:
        response = await http.post(
            f"{fake.base_url}/chat/completions", content=b"{}", headers={**AUTH, "content-type": "text/plain"}
        )

    assert (response.status_code, response.json()["error"]["type"]) == (400, "invalid_request_error")


async def test_a_truncated_answer_promises_more_than_it_sends(http: httpx.AsyncClient) -> None:
    async with FakeOpenAI() as fake:
        fake.script(Step.truncated())
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(f"{fake.base_url}/chat/completions", json=CHAT, headers=AUTH)

    assert fake.stats.calls == 1


async def test_the_fake_runs_as_its_own_process(http: httpx.AsyncClient) -> None:
    script = (Step.fault(429, error_code="insufficient_quota"),)
    async with FakeProcess("openai", FakeConfig(reply_text="from afar"), script=script) as fake:
        first = await http.post(f"{fake.url}/v1/chat/completions", json=CHAT, headers=AUTH)
        second = await http.post(f"{fake.url}/v1/chat/completions", json=CHAT, headers=AUTH)
        stats = await fake.stats()

    assert first.json()["error"]["code"] == "insufficient_quota"
    assert second.json()["choices"][0]["message"]["content"] == "from afar"
    assert (stats["calls"], stats["faults"], stats["replies"]) == (2, 1, 1)


async def test_random_faults_are_the_apis_own_with_retry_after_when_throttling(http: httpx.AsyncClient) -> None:
    async with FakeOpenAI(FakeConfig(fault_rate=0.6, seed=11, retry_after=2)) as fake:
        responses = [await http.post(f"{fake.base_url}/chat/completions", json=CHAT, headers=AUTH) for _ in range(40)]

    statuses = {response.status_code for response in responses}
    assert statuses == {200, 429, 500, 503}
    assert fake.stats.faults == sum(1 for response in responses if response.status_code != 200)
    for response in responses:
        if response.status_code != 200:
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
            assert ("retry-after" in response.headers) == (response.status_code in (429, 503))
