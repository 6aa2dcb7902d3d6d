"""WORKER_CONCURRENCY: at most that many jobs in flight per replica, each fetched only when a slot is free."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client

from tests.worker.fakes import FakeProvider
from tests.worker.support import ResultWatch, StartWorker, publish_jobs, wait_until_acked

pytestmark = pytest.mark.nats


async def test_no_more_jobs_in_flight_than_slots(
    start_worker: StartWorker, client: Client, results: ResultWatch
) -> None:
    gate = asyncio.Event()
    provider = FakeProvider(gate=gate)
    worker = await start_worker(providers={"anthropic": provider}, concurrency=3)
    bodies = await publish_jobs(client, 7)
    await provider.wait_for_calls(3)

    await asyncio.sleep(0.5)  # room for a wrong worker to take more: what is tested is that it does not
    consumer = await client.jetstream().consumer_info("MASCHINA_JOBS", "agent-worker")
    assert len(provider.calls) == 3
    assert consumer.num_ack_pending == 3  # fetched in batches of free slots: nothing waits in a local buffer
    assert worker.metrics.registry.get_sample_value("agent_worker_jobs_in_flight") == 3

    gate.set()
    await results.wait_for([body["data"]["runId"] for body in bodies])
    await wait_until_acked(client)
    assert len(provider.calls) == 7
