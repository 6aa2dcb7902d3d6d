"""Scenario 2: the nats-server is stopped mid-run and started again on the same store, while jobs still arrive."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import pytest

from tests.reliability.harness import Fleet, Run, nats_client, volume
from tests.reliability.ledger import settle, stream_count, wait_until
from tests.reliability.traffic import good_jobs, publish_jobs
from worker.contract import RESULTS_STREAM
from worker.embedded import NatsServer

pytestmark = pytest.mark.system

JOBS = volume(600)  # soak: 6,000
OUTAGE_SECS = 3.0


async def test_nats_server_restart_on_the_same_store(
    fleet: Fleet, nats_server: NatsServer, scenario: Callable[[str], Run]
) -> None:
    run = scenario("2 nats-server restart")
    provider = await fleet.provider("--delay", "0.2")
    await fleet.replicas(provider, 2)
    jobs = good_jobs(JOBS, prefix="restart")
    first, rest = jobs[: 2 * JOBS // 3], jobs[2 * JOBS // 3 :]
    async with nats_client(nats_server.url) as nc:
        js = nc.jetstream()
        report = await publish_jobs(js, first)

        async def a_third_done() -> bool:
            return await stream_count(js, RESULTS_STREAM) >= JOBS // 3

        await wait_until(a_third_done, within=120, what="a third of the results")
        await asyncio.to_thread(nats_server.stop)
        # The last third is published during the outage: the publisher retries under the same message id
        # until the server is back, and publishes buffered by the client while it reconnects come back duplicate.
        late = asyncio.create_task(publish_jobs(js, rest, attempt_timeout=1.0))
        await asyncio.sleep(OUTAGE_SECS)  # the length of the outage, not a synchronisation
        await asyncio.to_thread(nats_server.start)
        late_report = await late
        run.sent = report.acked | late_report.acked
        await settle(js, outcomes=JOBS, within=120 + JOBS / 10)
        figures, ledger = await run.finish(
            js,
            provider=provider,
            notes=f"server down {OUTAGE_SECS:.0f}s; publish retries {late_report.retries}, "
            f"refused as duplicates {late_report.duplicates}",
        )
    for replica in fleet.workers:
        assert replica.alive, f"{replica.name} did not survive the restart"
    figures.assert_clean(ledger, run.sent)
    assert len(run.sent) == JOBS
    assert ledger.statuses() == {"completed": JOBS}


async def test_sigterm_while_the_nats_server_is_down(
    fleet: Fleet, nats_server: NatsServer, scenario: Callable[[str], Run]
) -> None:
    """A replica told to stop during an outage cannot store, ack or drain: it must still exit 0, and its
    unfinished jobs must reach another replica once the server is back."""
    run = scenario("2b SIGTERM during a nats-server outage")
    jobs = volume(40)
    provider = await fleet.provider("--delay", "2")
    (victim,) = await fleet.replicas(provider, 1, WORKER_SHUTDOWN_GRACE_SECS="1")
    async with nats_client(nats_server.url) as nc:
        js = nc.jetstream()
        report = await publish_jobs(js, good_jobs(jobs, prefix="sigterm-outage"))
        run.sent = report.acked

        async def calls_in_flight() -> bool:
            return int((await provider.stats())["in_flight"]) > 0

        await wait_until(calls_in_flight, within=30, what="provider calls in flight")
        await asyncio.to_thread(nats_server.stop)
        victim.signal(signal.SIGTERM)
        code = await victim.wait(within=30)
        await asyncio.to_thread(nats_server.start)
        await fleet.replicas(provider, 1)
        await settle(js, outcomes=jobs, within=120)
        figures, ledger = await run.finish(js, provider=provider, notes=f"stopped replica exit {code}")
    figures.assert_clean(ledger, run.sent)
    assert ledger.statuses() == {"completed": jobs}
    assert code == 0, f"exit {code}:\n{victim.log_tail()}"
