"""Scenario 6: the provider goes down. Jobs wait (nak with a delay) instead of failing and finish once it is
back; when it never comes back, each job ends with one `failed` result after its last delivery.

The default `RetryPolicy` (settings `WORKER_RETRY_*` and `WORKER_REDELIVERY_*`) bounds one delivery to 5
calls with full-jitter waits of at most 0.5 + 1 + 2 + 4 s, then hands the job back with a 5 s redelivery
delay, doubling up to 120 s. The default outage (10 s) outlasts one delivery's retries, so every job must
wait at least once; soak uses the issue's 60 s. `timeoutSecs` (30) is well above a delivery's retries, so no job ends
`timed_out`. `WORKER_MAX_DELIVER=2` makes "stays down" end after one nak.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable

import pytest

from tests.reliability.harness import SOAK, Fleet, Run, nats_client, volume
from tests.reliability.ledger import settle, stream_count
from tests.reliability.traffic import good_jobs, publish_jobs
from worker.contract import RESULTS_STREAM
from worker.embedded import NatsServer

pytestmark = pytest.mark.system

JOBS = volume(100)  # soak: 1,000
DOWN_SECS = 60.0 if SOAK else 10.0
JOB_TIMEOUT_SECS = 30
CONCURRENCY = 64
# The longest one delivery retries for against a dead provider: RetryPolicy's 5 calls, waits up to 0.5+1+2+4 s.
MAX_DELIVERY_SECS = 7.5
_NAKS = re.compile(r'^agent_worker_naks_total\{code="provider_unavailable"\} (\S+)$', re.MULTILINE)


async def test_provider_down_then_back(fleet: Fleet, nats_server: NatsServer, scenario: Callable[[str], Run]) -> None:
    run = scenario(f"6 provider down {DOWN_SECS:.0f}s then back")
    provider = await fleet.provider("--delay", "0.05", "--down")
    (replica,) = await fleet.replicas(provider, 1, WORKER_CONCURRENCY=str(CONCURRENCY))
    async with nats_client(nats_server.url) as nc:
        js = nc.jetstream()
        report = await publish_jobs(js, good_jobs(JOBS, prefix="outage", timeout_secs=JOB_TIMEOUT_SECS))
        run.sent = report.acked
        await asyncio.sleep(DOWN_SECS)  # the outage itself
        stored_while_down = await stream_count(js, RESULTS_STREAM)
        await provider.configure(down=False)
        await settle(js, outcomes=JOBS, within=DOWN_SECS + 60 + JOBS * MAX_DELIVERY_SECS / CONCURRENCY)
        naks = sum(float(count) for count in _NAKS.findall(await replica.metrics_text()))
        figures, ledger = await run.finish(js, provider=provider)
    attempts = Counter(records[0].attempt for records in ledger.results.values())
    figures.notes = f"{stored_while_down} results while down; {naks:.0f} naks; results by delivery " + ", ".join(
        f"#{attempt}: {count}" for attempt, count in sorted(attempts.items())
    )
    print(figures.notes)
    figures.assert_clean(ledger, run.sent)
    assert stored_while_down == 0, "a job ended while the provider was down"
    assert ledger.statuses() == {"completed": JOBS}
    # Jobs fetched late (beyond the free slots) may start when the outage is nearly over and finish on
    # their first delivery; those fetched first cannot, since one delivery's retries end before the outage.
    assert max(attempts) > 1, "no job was handed back to wait"
    assert naks > 0, "the replica reports no nak"


async def test_provider_stays_down(fleet: Fleet, nats_server: NatsServer, scenario: Callable[[str], Run]) -> None:
    run = scenario("6 provider stays down, max_deliver 2")
    provider = await fleet.provider("--down")
    await fleet.replicas(provider, 1, WORKER_MAX_DELIVER="2", WORKER_CONCURRENCY=str(CONCURRENCY))
    async with nats_client(nats_server.url) as nc:
        js = nc.jetstream()
        report = await publish_jobs(js, good_jobs(JOBS, prefix="down", timeout_secs=JOB_TIMEOUT_SECS))
        run.sent = report.acked
        await settle(js, outcomes=JOBS, within=60 + JOBS * MAX_DELIVERY_SECS * 2 / CONCURRENCY)
        figures, ledger = await run.finish(js, provider=provider)
    figures.assert_clean(ledger, run.sent)
    assert ledger.statuses() == {"failed": JOBS}
    for records in ledger.results.values():
        assert (records[0].code, records[0].retryable, records[0].attempt) == ("provider_unavailable", True, 2)
    assert not ledger.dead_letters
