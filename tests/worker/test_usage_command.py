"""`agent-worker usage`: a user's month read from the real bucket, as text and JSON."""

from __future__ import annotations

import json

import pytest
from nats.aio.client import Client

from catalog.quota import MonthlyUsage
from testkit.process import Completed, run_command
from tests.worker.support import worker_settings
from worker.embedded import NatsServer
from worker.jetstream.topology import ensure_topology
from worker.jetstream.usage import ensure_usage_bucket

pytestmark = pytest.mark.nats


@pytest.fixture
async def url(nats_server: NatsServer, client: Client) -> str:
    settings = worker_settings(nats_server, quotas="on")
    await ensure_topology(client.jetstream(), settings)
    kv = await ensure_usage_bucket(client.jetstream(), settings)
    await kv.put("user-7.2026-03", MonthlyUsage(1_234_567, {"run-a": 4_000, "run-b": 600}).to_json())
    return nats_server.url


async def run_usage(url: str, *argv: str) -> Completed:
    """The real command in its own process, as ops run it."""
    return await run_command("usage", *argv, env={"NATS_URL": url})


async def test_text_shows_billed_reserved_quota_and_remaining(url: str) -> None:
    done = await run_usage(url, "user-7", "--month", "2026-03", "--tier", "m5")
    assert (done.code, done.err) == (0, "")
    assert done.out.splitlines() == [
        "usage user-7.2026-03",
        "  billed           1,234,567  tokens (settled runs)",
        "  reserved             4,600  tokens held by 2 run(s) in flight",
        "  m5         quota       2,000,000  remaining         760,833",
    ]


async def test_json_for_every_tier(url: str) -> None:
    done = await run_usage(url, "user-7", "--month", "2026-03", "--json")
    assert done.code == 0
    document = json.loads(done.out)
    assert document["key"] == "user-7.2026-03"
    assert document["billed"] == 1_234_567
    assert document["reserved"] == {"runs": 2, "tokens": 4_600, "byRun": {"run-a": 4_000, "run-b": 600}}
    assert document["tiers"]["m1"] == {"quota": 500_000, "remaining": 0}
    assert document["tiers"]["enterprise"] == {"quota": None, "remaining": None}


async def test_a_month_with_nothing_is_zero(url: str) -> None:
    done = await run_usage(url, "user-7", "--month", "2026-04", "--tier", "m1", "--json")
    assert done.code == 0
    document = json.loads(done.out)
    assert (document["billed"], document["reserved"]["runs"], document["tiers"]["m1"]["remaining"]) == (0, 0, 500_000)


@pytest.mark.parametrize("argv", [["user-7", "--month", "2026-13"], ["user 7"], ["user-7", "--tier", "gold"]])
async def test_bad_arguments_exit_2(url: str, argv: list[str]) -> None:
    done = await run_usage(url, *argv)
    assert done.code == 2
    assert done.err.startswith("agent-worker usage: ")
