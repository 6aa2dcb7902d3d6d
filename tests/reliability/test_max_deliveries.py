"""Scenario 10 (beyond the issue's nine): jobs run out of deliveries while no replica is running.

Every delivery of each job dies with its replica (SIGKILL while the provider call hangs), and the last
delivery's `ack_wait` runs out while no replica is connected. The next replica to start must
dead-letter each job with `max_deliveries_exceeded` and store its `failed` result: no job may be left
in the jobs stream unseen.

Measured with nats-server 2.15: the server does not send the max-deliveries advisory when the last
`ack_wait` runs out, but at its next delivery attempt, i.e. when a replica next pulls; until then the
consumer still counts the job as pending. So the advisory is sent while the new replica connects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from testkit.process import FakeProcess
from tests.reliability.harness import Fleet, Run, nats_client, volume
from tests.reliability.ledger import settle, wait_until
from tests.reliability.traffic import good_jobs, publish_jobs
from worker.contract import JOBS_STREAM
from worker.embedded import NatsServer

pytestmark = pytest.mark.system

JOBS = volume(5)  # soak: 50
MAX_DELIVER = 2
ACK_WAIT_SECS = 2.0


async def _calls_reach(provider: FakeProcess, calls: int) -> None:
    async def reached() -> bool:
        stats = await provider.stats()
        return int(stats["calls"]) >= calls and int(stats["in_flight"]) >= JOBS

    await wait_until(reached, within=60, what=f"{calls} provider calls, {JOBS} in flight")


async def test_max_deliveries_exhausted_while_no_replica_runs(
    fleet: Fleet, nats_server: NatsServer, scenario: Callable[[str], Run]
) -> None:
    run = scenario(f"10 max_deliver {MAX_DELIVER} exhausted with no replica running")
    provider = await fleet.provider("--delay", "600")  # every call hangs until its replica dies
    settings = {
        "WORKER_MAX_DELIVER": str(MAX_DELIVER),
        "WORKER_ACK_WAIT_SECS": str(ACK_WAIT_SECS),
        # Every job in flight at once, so each kill ends one delivery of every job.
        "WORKER_CONCURRENCY": str(JOBS),
    }
    async with nats_client(nats_server.url) as nc:
        js: Any = nc.jetstream()
        for delivery in range(1, MAX_DELIVER + 1):
            (replica,) = await fleet.replicas(provider, 1, **settings)
            if delivery == 1:
                report = await publish_jobs(js, good_jobs(JOBS, prefix="exhausted"))
                run.sent = report.acked
            await _calls_reach(provider, delivery * JOBS)
            replica.kill()

        # The last delivery's ack_wait runs out with no replica connected: a server timer with nothing to watch.
        await asyncio.sleep(ACK_WAIT_SECS + 1.0)
        await fleet.replicas(provider, 1, **settings)
        await settle(js, outcomes=2 * JOBS, within=60)
        left = (await js.stream_info(JOBS_STREAM)).state.messages
        figures, ledger = await run.finish(js, provider=provider, notes=f"{left} jobs left in the jobs stream")
    figures.assert_clean(ledger, run.sent)
    assert figures.provider_calls == MAX_DELIVER * JOBS
    for run_id in run.sent:
        record = ledger.one(run_id)
        assert (record.status, record.code) == ("failed", "max_deliveries_exceeded")
    assert sorted(letter.run_id or "" for letter in ledger.dead_letters) == sorted(run.sent)
    assert {letter.reason for letter in ledger.dead_letters} == {"max_deliveries_exceeded"}
    assert left == 0
