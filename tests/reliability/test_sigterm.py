"""Scenario 4: SIGTERM to a replica with jobs in flight: it exits 0 within the grace period, no job is lost.

Two runs: jobs short enough to finish inside the grace period, and jobs longer than it (the replica
hands them back and another replica runs them again).
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable

import pytest

from testkit.process import WorkerProcess
from tests.reliability.harness import Fleet, Run, nats_client, volume
from tests.reliability.ledger import settle, wait_until
from tests.reliability.traffic import good_jobs, publish_jobs
from worker.embedded import NatsServer

pytestmark = pytest.mark.system

JOBS = volume(100)  # soak: 1,000
# After the grace period: hand back, unsubscribe, drain, close the providers, and the interpreter's own
# teardown (its final garbage collection alone takes 1-3 s on a busy 2-core machine).
EXIT_MARGIN_SECS = 5.0
_IN_FLIGHT = re.compile(r"^agent_worker_jobs_in_flight (\S+)$", re.MULTILINE)


async def in_flight(replica: WorkerProcess) -> float:
    match = _IN_FLIGHT.search(await replica.metrics_text())
    return 0.0 if match is None else float(match.group(1))


@pytest.mark.parametrize(
    ("job_secs", "grace_secs"), [(1.0, 10.0), (2.0, 1.0)], ids=["jobs-finish-in-grace", "jobs-outlive-grace"]
)
async def test_sigterm_with_jobs_in_flight(
    job_secs: float, grace_secs: float, fleet: Fleet, nats_server: NatsServer, scenario: Callable[[str], Run]
) -> None:
    run = scenario(f"4 SIGTERM, jobs {job_secs:g}s, grace {grace_secs:g}s")
    provider = await fleet.provider("--delay", str(job_secs))
    victim, survivor = await fleet.replicas(provider, 2, WORKER_SHUTDOWN_GRACE_SECS=str(grace_secs))
    async with nats_client(nats_server.url) as nc:
        js = nc.jetstream()
        report = await publish_jobs(js, good_jobs(JOBS, prefix=f"sigterm-{job_secs:g}"))
        run.sent = report.acked

        async def victim_busy() -> bool:
            return await in_flight(victim) >= 8

        await wait_until(victim_busy, within=60, what=f"jobs in flight on {victim.name}")
        busy = await in_flight(victim)
        signalled = time.monotonic()
        victim.signal(signal.SIGTERM)
        code = await victim.wait(within=grace_secs + 30)
        exit_secs = time.monotonic() - signalled
        await settle(js, outcomes=JOBS, within=120 + JOBS * job_secs / 32)
        figures, ledger = await run.finish(
            js, provider=provider, notes=f"{busy:.0f} in flight at SIGTERM; exit {code} after {exit_secs:.1f}s"
        )
    assert code == 0
    assert exit_secs <= grace_secs + EXIT_MARGIN_SECS
    figures.assert_clean(ledger, run.sent)
    assert ledger.statuses() == {"completed": JOBS}
    assert survivor.alive
