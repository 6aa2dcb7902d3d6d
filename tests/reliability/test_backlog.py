"""Scenario 8: a backlog queued while no worker runs, then two replicas: everything processed, memory bounded.

The streams are created ahead (with the worker's own definitions) so the jobs have somewhere to wait.
Memory is bounded when a replica's peak RSS does not grow with the backlog: fetches are sized by free
slots, so a replica never holds more than `WORKER_CONCURRENCY` jobs, whether 5,000 or 50,000 wait.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from testkit.streams import create_streams
from tests.reliability.harness import Fleet, Run, nats_client, volume
from tests.reliability.ledger import settle
from tests.reliability.traffic import good_jobs, publish_jobs
from worker.embedded import NatsServer

pytestmark = pytest.mark.system

JOBS = volume(5_000)  # soak: 50,000
# Far above what a replica with 64 jobs in flight needs (about 100 MB), far below what holding a 50,000-job
# backlog in memory would take.
PEAK_RSS_LIMIT_MB = 300


async def test_backlog_drains_with_bounded_memory(
    fleet: Fleet, nats_server: NatsServer, scenario: Callable[[str], Run]
) -> None:
    run = scenario("8 backlog, then 2 replicas")
    provider = await fleet.provider("--delay", "0.02")
    async with nats_client(nats_server.url) as nc:
        js = nc.jetstream()
        await create_streams(js)
        report = await publish_jobs(js, good_jobs(JOBS, prefix="backlog"))
        run.sent = report.acked
        assert (await js.stream_info("MASCHINA_JOBS")).state.messages == JOBS
        replicas = await fleet.replicas(provider, 2, WORKER_CONCURRENCY="64")
        await settle(js, outcomes=JOBS, within=60 + JOBS / 25)
        peaks = {replica.name: replica.peak_rss_mb for replica in replicas}
        figures, ledger = await run.finish(
            js,
            provider=provider,
            notes=f"published in {report.seconds:.1f}s; peak RSS "
            + ", ".join(f"{name} {mb:.0f} MB" for name, mb in peaks.items()),
        )
    figures.assert_clean(ledger, run.sent)
    assert ledger.statuses() == {"completed": JOBS}
    assert all(records[0].worker_id in peaks for records in ledger.results.values())
    for name, mb in peaks.items():
        assert 0 < mb < PEAK_RSS_LIMIT_MB, f"{name} peaked at {mb:.0f} MB"
