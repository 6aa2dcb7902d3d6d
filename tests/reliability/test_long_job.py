"""Scenario 9: a job that runs three times longer than `ack_wait` is kept alive with `in_progress`:
it is not redelivered and the provider is called once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.reliability.harness import Fleet, Run, nats_client, volume
from tests.reliability.ledger import settle
from tests.reliability.traffic import good_jobs, publish_jobs
from worker.contract import CONSUMER, JOBS_STREAM
from worker.embedded import NatsServer

pytestmark = pytest.mark.system

JOBS = volume(1)  # soak: 10
ACK_WAIT_SECS = 2.0
JOB_SECS = 3 * ACK_WAIT_SECS


async def test_job_longer_than_ack_wait_is_not_redelivered(
    fleet: Fleet, nats_server: NatsServer, scenario: Callable[[str], Run]
) -> None:
    run = scenario(f"9 job of {JOB_SECS:g}s with ack_wait {ACK_WAIT_SECS:g}s")
    provider = await fleet.provider("--delay", str(JOB_SECS))
    # One replica is enough: a redelivery would show as delivery 2 in the result's `attempt`.
    await fleet.replicas(provider, 1, WORKER_ACK_WAIT_SECS=str(ACK_WAIT_SECS))
    async with nats_client(nats_server.url) as nc:
        js = nc.jetstream()
        report = await publish_jobs(js, good_jobs(JOBS, prefix="long"))
        run.sent = report.acked
        await settle(js, outcomes=JOBS, within=JOB_SECS + 30)
        consumer = await js.consumer_info(JOBS_STREAM, CONSUMER)
        figures, ledger = await run.finish(
            js, provider=provider, notes=f"consumer redelivered {consumer.num_redelivered}"
        )
    figures.assert_clean(ledger, run.sent)
    assert ledger.statuses() == {"completed": JOBS}
    assert {records[0].attempt for records in ledger.results.values()} == {1}
    assert consumer.num_redelivered == 0
    assert figures.provider_calls == JOBS
    assert figures.wall_secs >= JOB_SECS
