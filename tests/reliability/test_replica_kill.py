"""Scenario 1: three replicas under load; one is killed with SIGKILL a third of the way through and replaced."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.reliability.harness import Fleet, Run, nats_client, volume
from tests.reliability.ledger import settle, stream_count, wait_until
from tests.reliability.traffic import good_jobs, publish_jobs
from worker.contract import RESULTS_STREAM
from worker.embedded import NatsServer

pytestmark = pytest.mark.system

JOBS = volume(600)  # soak: 6,000


async def test_kill_9_one_of_three_replicas_mid_run(
    fleet: Fleet, nats_server: NatsServer, scenario: Callable[[str], Run]
) -> None:
    run = scenario("1 kill -9 one of 3 replicas")
    provider = await fleet.provider("--delay", "0.2")
    replicas = await fleet.replicas(provider, 3)
    async with nats_client(nats_server.url) as nc:
        js = nc.jetstream()
        report = await publish_jobs(js, good_jobs(JOBS, prefix="kill"))
        run.sent = report.acked

        async def a_third_done() -> bool:
            return await stream_count(js, RESULTS_STREAM) >= JOBS // 3

        await wait_until(a_third_done, within=120, what="a third of the results")
        at = await stream_count(js, RESULTS_STREAM)
        replicas[0].kill()
        await fleet.worker(provider)
        await settle(js, outcomes=JOBS, within=120 + JOBS / 10)
        figures, ledger = await run.finish(
            js, provider=provider, notes=f"killed replica-1 at {at} results; replacement replica-4"
        )
    figures.assert_clean(ledger, run.sent)
    assert len(run.sent) == JOBS
    assert ledger.statuses() == {"completed": JOBS}
    # The killed replica's jobs in flight were run again elsewhere: at-least-once execution, billed once.
    assert figures.provider_calls >= JOBS
