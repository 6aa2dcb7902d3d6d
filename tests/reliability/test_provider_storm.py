"""Scenario 5: a provider storm: 20% of calls answer 429 (with retry-after), 529 or 500 at random.

Every job must still end `completed`, and the work must stay bounded: no job uses more deliveries
than `max_deliver`, and the calls stay near what the fault rate predicts (1 / 0.8 per job).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.reliability.harness import Fleet, Run, nats_client, volume
from tests.reliability.ledger import settle
from tests.reliability.traffic import good_jobs, publish_jobs
from worker.embedded import NatsServer

pytestmark = pytest.mark.system

JOBS = volume(400)  # soak: 4,000
FAULT_RATE = 0.2
MAX_DELIVER = 5


async def test_provider_storm_every_job_completes(
    fleet: Fleet, nats_server: NatsServer, scenario: Callable[[str], Run]
) -> None:
    run = scenario("5 provider storm 20% 429/529/500")
    provider = await fleet.provider(
        "--delay",
        "0.05",
        "--fault-rate",
        str(FAULT_RATE),
        "--fault-statuses",
        "429,529,500",
        "--retry-after",
        "1",
        "--seed",
        "5",
    )
    await fleet.replicas(provider, 1, WORKER_MAX_DELIVER=str(MAX_DELIVER), WORKER_CONCURRENCY="64")
    async with nats_client(nats_server.url) as nc:
        js = nc.jetstream()
        report = await publish_jobs(js, good_jobs(JOBS, prefix="storm"))
        run.sent = report.acked
        await settle(js, outcomes=JOBS, within=120 + JOBS / 10)
        stats = await provider.stats()
        figures, ledger = await run.finish(
            js,
            provider=provider,
            notes="faults by status " + ", ".join(f"{k}: {v}" for k, v in sorted(stats["by_status"].items())),
        )
    figures.assert_clean(ledger, run.sent)
    assert ledger.statuses() == {"completed": JOBS}
    assert max(records[0].attempt for records in ledger.results.values()) <= MAX_DELIVER
    assert stats["faults"] > 0, "the storm never struck"
    # Expected: 1 / (1 - FAULT_RATE) = 1.25 calls per job; 1.5 leaves room for chance, not for a runaway retry loop.
    assert figures.provider_calls <= 1.5 * JOBS
