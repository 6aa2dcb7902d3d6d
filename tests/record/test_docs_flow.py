"""docs/recordings.md's three commands, as a test engineer runs them against `agent-worker demo --keep-running`.

1. record live jobs from the running demo, 2. replay them with identical bills, 3. reprice the demo's
results stream under a changed catalog. Every command is a real child process.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
from nats.js.errors import NotFoundError

from tests.record.catalogs import SONNET, changed_catalog
from tests.record.cli import Cli
from worker.commands.demo import SAMPLES
from worker.contract import RESULTS_SUBJECT_PREFIX
from worker.payloads import read_payloads

pytestmark = pytest.mark.system

SAMPLE_COUNT = len(list(read_payloads(SAMPLES)))


@pytest.fixture
async def demo() -> AsyncIterator[tuple[Cli, str]]:
    cli = await Cli.start("demo", "--keep-running", "--publish-every", "1", env={})
    try:
        line = await cli.stdout_line("Still running at", within=90)
        match = re.search(r"nats://[\d.]+:\d+", line)
        assert match is not None
        yield cli, match.group(0)
    finally:
        cli.kill()


async def test_record_from_the_demo_replay_with_identical_bills_and_reprice(
    demo: tuple[Cli, str], tmp_path: Path
) -> None:
    cli, url = demo
    recording = tmp_path / "jobs.jsonl"

    # 1. Record: one round of the demo's jobs, republished every second as new runs.
    record = await Cli.start("record", "--out", str(recording), "--count", str(SAMPLE_COUNT), env={"NATS_URL": url})
    code, _, err = await record.finish(within=60)
    assert code == 0, err
    assert len(recording.read_bytes().splitlines()) == SAMPLE_COUNT

    # 2. Replay: the same bills as the demo's worker stored for those runs.
    code, out, err = await (await Cli.start("replay", str(recording), env={})).finish()
    assert code == 0, err
    replayed = [orjson.loads(line) for line in out.splitlines()]
    assert len(replayed) >= SAMPLE_COUNT - 2  # the samples' two malformed bodies are dead-lettered
    stored = await stored_results(url, [r["runId"] for r in replayed])
    assert [bill(r) for r in replayed] == [bill(stored[r["runId"]]) for r in replayed]

    # 3. Reprice the demo's results stream with Sonnet at 3.5 instead of 3.
    catalog = changed_catalog(tmp_path / "sonnet.toml", SONNET, multiplier="3.5")
    code, out, err = await (
        await Cli.start("reprice", "--catalog", str(catalog), "--json", env={"NATS_URL": url})
    ).finish()
    assert code == 0, err
    report = orjson.loads(out)
    assert report["runs"] >= len(replayed)
    assert report["total"]["difference"] > 0
    assert all(g["difference"] == 0 for g in report["groups"] if g["model"] != SONNET)

    cli.process.send_signal(signal.SIGINT)
    assert (await cli.finish(within=30))[0] == 0


async def stored_results(url: str, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each run's stored record, once the demo's worker has stored it."""
    client = await nats.connect(url)
    js = client.jetstream()
    found: dict[str, dict[str, Any]] = {}

    async def fetch_missing() -> None:
        for run_id in run_ids:
            if run_id not in found:
                try:
                    message = await js.get_last_msg("MASCHINA_RESULTS", RESULTS_SUBJECT_PREFIX + run_id)
                except NotFoundError:
                    continue
                found[run_id] = orjson.loads(message.data or b"{}")

    try:
        async with asyncio.timeout(30):
            while len(found) < len(run_ids):
                await fetch_missing()
                await asyncio.sleep(0.1)
    finally:
        await client.close()
    return found


def bill(result: dict[str, Any]) -> tuple[Any, ...]:
    return result["status"], result["model"], result["usage"], result["billing"], result["error"]
