"""`agent-worker reprice` over results the real worker stored, under catalogs changed one thing at a time.

The results stream is filled once for the module by the real worker (in process, with the real Anthropic
provider against the fake Messages API over HTTP): runs of every status. Each test then runs the command
as a child process against it, read-only, and checks its JSON against figures computed here by hand.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest

from catalog import default_catalog
from testkit import FakeAnthropic, FakeConfig, Step
from tests.record.catalogs import HAIKU, OPUS, SONNET, changed_catalog
from tests.worker.support import ResultWatch, job, publish_job
from worker.commands._nats import ReadRange
from worker.commands.reprice import read_results
from worker.embedded import NatsServer
from worker.reprice import Repricer
from worker.service import Worker
from worker.settings import Settings

pytestmark = pytest.mark.system


async def _populate(url: str) -> list[dict[str, Any]]:
    async with FakeAnthropic(FakeConfig()) as fake:
        settings = Settings.from_env(
            {},
            nats_url=(url,),
            http_port=0,
            worker_id="reprice-test",
            anthropic_api_key="sk-test",
            anthropic_base_url=fake.base_url,
            retry_max_calls=1,
            max_deliver=1,
        )
        worker = Worker(settings)
        await worker.start()
        client = await nats.connect(url)
        try:
            watch = await ResultWatch().open(client)
            run_ids: list[str] = []

            async def run(*steps: Step, **data: Any) -> None:
                fake.script(*steps)
                body = job(inputPayload={"message": f"job {len(run_ids)}: " + "words " * len(run_ids)}, **data)
                run_ids.append(body["data"]["runId"])
                await publish_job(client, body)
                await watch.wait_for(run_ids[-1], within=30)

            await run(Step.fault(400))  # failed, provider_bad_request, nothing billed
            await run(Step.reply(usage={"output_tokens": -1}))  # failed, provider_error: a usage that is not a count
            await run(Step.hang(), timeoutSecs=1)  # timed_out
            for data in (
                {"tier": "m5", "model": SONNET},
                {"tier": "m5", "model": SONNET, "maxTokens": 100},
                {"tier": "m5", "model": None},
                {"tier": "m1", "model": None},
                {"tier": "m1", "model": HAIKU},
                {"tier": "m10", "model": OPUS},
                {"tier": "teams", "model": None},
                {"tier": "m1", "model": OPUS},  # model_not_allowed
                {"tier": "m1", "model": OPUS},
                {"tier": "no-such-tier"},  # unknown_tier
                {"tier": "m5", "model": "no-such-model"},  # unknown_model
                {"tier": "m5", "agentId": ""},  # invalid_job
            ):
                await run(**data)
            return [watch.by_run[run_id][0] for run_id in run_ids]
        finally:
            await client.close()
            await worker.stop()


@pytest.fixture(scope="module")
def stored() -> Iterator[tuple[NatsServer, list[dict[str, Any]]]]:
    """A nats-server whose results stream holds the worker's results for runs of every status."""
    with NatsServer() as server:
        results = asyncio.run(_populate(server.url))
        yield server, results


def reprice(server: NatsServer, *args: str | Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "WORKER_"))}
    done = subprocess.run(
        [sys.executable, "-m", "worker", "reprice", "--json", *map(str, args)],
        env={**env, "NATS_URL": server.url},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"results read from MASCHINA_RESULTS" in done.stderr
    report: dict[str, Any] = orjson.loads(done.stdout)
    return report


def groups(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(g["tier"], g["model"]): g for g in report["groups"]}


def billed(results: list[dict[str, Any]], **where: Any) -> list[dict[str, Any]]:
    return [r for r in results if all(r[k] == v for k, v in where.items())]


def test_the_populated_stream_holds_runs_of_every_status(stored: tuple[NatsServer, list[dict[str, Any]]]) -> None:
    _, results = stored
    assert {r["status"] for r in results} == {"completed", "rejected", "failed", "timed_out"}
    codes = {r["error"]["code"] for r in results if r["error"]}
    assert codes == {
        "provider_bad_request",
        "provider_error",
        "timeout",
        "model_not_allowed",
        "unknown_tier",
        "unknown_model",
        "invalid_job",
    }
    # Failed runs the worker bills (result_too_large, malformed answers with usage) are priced in test_reprice_unit.


def test_under_the_unchanged_catalog_every_difference_is_exactly_zero(
    stored: tuple[NatsServer, list[dict[str, Any]]],
) -> None:
    server, results = stored
    report = reprice(server, "--catalog", Path(__file__).parents[2] / "catalog" / "default.toml")

    assert report["runs"] == len(results)
    assert report["total"]["billedBefore"] == sum(r["billing"]["billedTokens"] for r in results) > 0
    assert report["total"]["difference"] == 0
    assert all(g["difference"] == 0 for g in report["groups"])
    assert (report["total"]["refused"], report["total"]["newlyAllowed"], report["total"]["rerouted"]) == (0, 0, 0)


def test_one_multiplier_changed_shows_exactly_the_expected_difference(
    stored: tuple[NatsServer, list[dict[str, Any]]], tmp_path: Path
) -> None:
    server, results = stored
    catalog = changed_catalog(tmp_path / "sonnet.toml", SONNET, multiplier="3.5")
    report = reprice(server, "--catalog", catalog)

    sonnet = billed(results, model=SONNET)
    assert len(sonnet) >= 4
    # ceil(raw × 3.5) for input and output on their own, in integers: (7n + 1) // 2.
    expected = sum(
        (7 * raw_in(r) + 1) // 2 + (7 * r["usage"]["outputTokens"] + 1) // 2 - r["billing"]["billedTokens"]
        for r in sonnet
    )
    assert expected > 0
    assert report["total"]["difference"] == expected
    by_group = groups(report)
    for tier in ("m5", "teams"):
        runs = billed(sonnet, tier=tier)
        group = by_group[(tier, SONNET)]
        assert group["billedBefore"] == sum(r["billing"]["billedTokens"] for r in runs)
        assert group["multipliersAfter"] == ["3.5"]
    assert all(g["difference"] == 0 for key, g in by_group.items() if key[1] != SONNET)


def test_a_model_moved_to_a_higher_tier_turns_its_runs_into_refusals(
    stored: tuple[NatsServer, list[dict[str, Any]]], tmp_path: Path
) -> None:
    server, results = stored
    # Sonnet for m10 and up; m5's default becomes Haiku.
    catalog = changed_catalog(tmp_path / "moved.toml", SONNET, min_tier="m10", tier_m5=HAIKU)
    report = reprice(server, "--catalog", catalog)

    m5 = groups(report)[("m5", SONNET)]
    ran = billed(results, tier="m5", model=SONNET)  # and an invalid job that asked for Sonnet, in the same row
    asked = [r for r in ran if r["requestedModel"] == SONNET]
    assert (m5["runs"], m5["refused"], m5["rerouted"]) == (len(ran) + 1, len(asked), len(ran) - len(asked))
    assert len(asked) >= 2
    assert len(ran) > len(asked)
    assert m5["billedAfter"] == 0
    assert m5["difference"] == -sum(r["billing"]["billedTokens"] for r in ran) < 0
    teams = groups(report)[("teams", SONNET)]  # teams (rank 4) still may use it
    assert teams["difference"] == 0
    assert teams["refused"] == 0


def test_a_newly_allowed_model_is_counted_not_priced(
    stored: tuple[NatsServer, list[dict[str, Any]]], tmp_path: Path
) -> None:
    server, results = stored
    catalog = changed_catalog(tmp_path / "opus-for-m1.toml", OPUS, min_tier="m1")
    report = reprice(server, "--catalog", catalog, "--by", "tier")

    refused_before = billed(results, tier="m1", requestedModel=OPUS, status="rejected")
    assert len(refused_before) == 2
    m1 = {g["tier"]: g for g in report["groups"]}["m1"]
    assert m1["newlyAllowed"] == 2
    assert m1["difference"] == 0
    assert report["total"]["newlyAllowed"] == 2
    assert report["total"]["difference"] == 0


async def test_the_time_range_bounds_what_is_read(stored: tuple[NatsServer, list[dict[str, Any]]]) -> None:
    server, results = stored
    settings = Settings.from_env({}, nats_url=(server.url,))
    now = datetime.now(UTC)

    async def runs(window: ReadRange) -> int:
        repricer = Repricer(default_catalog())
        read = await read_results(settings, window, repricer.add)
        assert read == repricer.runs
        return read

    assert await runs(ReadRange(start=now - timedelta(hours=1))) == len(results)
    assert await runs(ReadRange(start=now + timedelta(minutes=1))) == 0
    assert await runs(ReadRange(end=now - timedelta(hours=1))) == 0
    assert await runs(ReadRange(end=now + timedelta(minutes=1))) == len(results)


def raw_in(result: dict[str, Any]) -> int:
    usage = result["usage"]
    return int(usage["inputTokens"] + usage["cacheCreationInputTokens"] + usage["cacheReadInputTokens"])
