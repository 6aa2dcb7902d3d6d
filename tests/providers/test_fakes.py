"""The fake providers themselves: the API shapes they speak, their knobs, their counters and their CLI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import httpx
import orjson
import pytest

from testkit import FakeAnthropic, FakeConfig, FakeOllama, Step
from testkit._cli import build_parser, config_from_args
from testkit.process import FakeProcess

pytestmark = pytest.mark.nats

MESSAGE = {"model": "claude-haiku-4-5-20251001", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"x-api-key": "sk-right"}, 200),
        ({"authorization": "Bearer sk-right"}, 200),
        ({"x-api-key": "sk-wrong"}, 401),
        ({"authorization": "Bearer sk-wrong"}, 401),
        ({}, 401),
    ],
)
async def test_anthropic_fake_accepts_the_key_either_way(
    http: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    async with FakeAnthropic(FakeConfig(api_key="sk-right")) as fake:
        response = await http.post(f"{fake.url}/v1/messages", json=MESSAGE, headers=headers)

    assert response.status_code == status
    if status == 401:
        assert response.json()["error"]["type"] == "authentication_error"


async def test_anthropic_fake_answers_the_message_shape(http: httpx.AsyncClient) -> None:
    async with FakeAnthropic() as fake:
        response = await http.post(f"{fake.url}/v1/messages", json=MESSAGE, headers={"x-api-key": "k"})

    body = response.json()
    assert response.headers["request-id"].startswith("req_")
    assert body["id"].startswith("msg_")
    assert (body["type"], body["role"], body["model"]) == ("message", "assistant", MESSAGE["model"])
    assert body["content"] == [{"type": "text", "text": "Hello from the fake provider."}]
    assert (body["stop_reason"], body["stop_sequence"]) == ("end_turn", None)
    assert set(body["usage"]) >= {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    }


async def test_anthropic_fake_error_bodies_and_retry_after(http: httpx.AsyncClient) -> None:
    async with FakeAnthropic() as fake:
        fake.script(Step.fault(429, retry_after=3), Step.fault(529))
        limited = await http.post(f"{fake.url}/v1/messages", json=MESSAGE, headers={"x-api-key": "k"})
        overloaded = await http.post(f"{fake.url}/v1/messages", json=MESSAGE, headers={"x-api-key": "k"})
        refused = await http.post(
            f"{fake.url}/v1/messages", json={**MESSAGE, "stream": True}, headers={"x-api-key": "k"}
        )

    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert limited.json()["type"] == "error"
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert (overloaded.status_code, overloaded.json()["error"]["type"]) == (529, "overloaded_error")
    assert "retry-after" not in overloaded.headers
    assert refused.status_code == 400


async def test_ollama_fake_streams_ndjson_by_default(http: httpx.AsyncClient) -> None:
    async with FakeOllama() as fake:
        response = await http.post(f"{fake.url}/api/chat", json=CHAT)

    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert response.headers["content-type"] == "application/x-ndjson"
    assert all(line["done"] is False for line in lines[:-1])
    assert "".join(line["message"]["content"] for line in lines) == "Hello from the fake provider."
    final = lines[-1]
    assert (final["done"], final["done_reason"]) == (True, "stop")
    assert {"prompt_eval_count", "eval_count", "total_duration", "eval_duration"} <= set(final)


async def test_ollama_fake_answers_one_object_without_stream_and_404s_unknown_models(
    http: httpx.AsyncClient,
) -> None:
    async with FakeOllama(FakeConfig(models=("llama3.2",))) as fake:
        single = await http.post(f"{fake.url}/api/chat", json={**CHAT, "stream": False})
        unknown = await http.post(f"{fake.url}/api/chat", json={**CHAT, "model": "mistral"})

    assert single.json()["message"] == {"role": "assistant", "content": "Hello from the fake provider."}
    assert single.json()["done"] is True
    assert (unknown.status_code, unknown.json()) == (404, {"error": "model 'mistral' not found"})


async def test_random_faults_follow_the_rate_and_the_statuses(http: httpx.AsyncClient) -> None:
    async with FakeAnthropic(FakeConfig(fault_rate=0.5, fault_statuses=(429, 529), seed=7)) as fake:
        statuses = [
            (await http.post(f"{fake.url}/v1/messages", json=MESSAGE, headers={"x-api-key": "k"})).status_code
            for _ in range(40)
        ]

    assert set(statuses) == {200, 429, 529}
    assert 8 <= statuses.count(200) <= 32
    assert fake.stats.faults == 40 - statuses.count(200)


async def test_many_concurrent_slow_calls_are_held_at_once() -> None:
    calls = 300
    async with (
        FakeAnthropic(FakeConfig(delay=0.5)) as fake,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
    ):

        async def one() -> int:
            async with session.post(f"{fake.url}/v1/messages", json=MESSAGE, headers={"x-api-key": "k"}) as response:
                await response.read()
                return response.status

        started = time.monotonic()
        statuses = await asyncio.gather(*(one() for _ in range(calls)))
        elapsed = time.monotonic() - started

    assert statuses == [200] * calls
    assert fake.stats.max_in_flight == calls
    # One after another they would take 150 s; held together, about the delay.
    assert elapsed < 0.5 * 6


async def test_wait_until_wakes_on_a_change() -> None:
    async with FakeOllama(FakeConfig(delay=0.05)) as fake, httpx.AsyncClient() as client:
        call = asyncio.create_task(client.post(f"{fake.url}/api/chat", json=CHAT))
        async with asyncio.timeout(5):
            stats = await fake.wait_until(lambda s: s.replies == 1)
        await call

    assert stats.calls == 1


async def test_stopping_cuts_calls_in_flight() -> None:
    fake = FakeAnthropic(script=[Step.hang()])
    await fake.start()
    async with httpx.AsyncClient(timeout=10) as client:
        call = asyncio.create_task(client.post(f"{fake.url}/v1/messages", json=MESSAGE, headers={"x-api-key": "k"}))
        async with asyncio.timeout(5):
            await fake.wait_until(lambda s: s.in_flight == 1)
        started = time.monotonic()
        await fake.stop()
        stopped_in = time.monotonic() - started
        with pytest.raises(httpx.TransportError):
            await call

    assert stopped_in < 3


def test_cli_flags_become_the_config() -> None:
    args = build_parser("fake").parse_args(
        [
            *("--delay", "1.0", "--fault-rate", "0.2", "--fault-statuses", "429,529", "--retry-after", "none"),
            *("--models", "a,b", "--down", "--config", '{"reply_text": "x", "delay": 9}'),
        ]
    )

    config = config_from_args(args)

    assert (config.delay, config.fault_rate, config.fault_statuses) == (1.0, 0.2, (429, 529))
    assert (config.retry_after, config.models, config.down, config.reply_text) == (None, ("a", "b"), True, "x")
    assert config_from_args(build_parser("fake").parse_args([])) == FakeConfig()


async def test_a_fake_in_its_own_process_is_steered_over_http(http: httpx.AsyncClient) -> None:
    script = (Step.fault(503, retry_after=2),)
    async with FakeProcess("ollama", FakeConfig(reply_text="from afar"), script=script) as fake:
        first = await http.post(f"{fake.url}/api/chat", json={**CHAT, "stream": False})
        await fake.configure(down=True)
        with pytest.raises(httpx.TransportError):
            await http.post(f"{fake.url}/api/chat", json=CHAT)
        await fake.configure(down=False)
        await fake.script(Step.reply("scripted"))
        second = await http.post(f"{fake.url}/api/chat", json={**CHAT, "stream": False})
        stats = await fake.stats()
        sent = await fake.requests()
        await fake.reset()
        after_reset = await fake.stats()
        alive_inside = fake.alive

    assert (first.status_code, first.headers["retry-after"]) == (503, "2")
    assert second.json()["message"]["content"] == "scripted"
    assert (stats["calls"], stats["faults"], stats["drops"], stats["replies"]) == (3, 1, 1, 1)
    assert stats["config"]["reply_text"] == "from afar"
    assert [request["body"]["model"] for request in sent] == ["llama3.2"] * 3
    assert after_reset["calls"] == 0
    assert alive_inside
    assert not fake.alive
