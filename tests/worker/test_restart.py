"""A nats-server restart mid-run: the worker reconnects by itself and every job still ends with one record."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client

from tests.worker.fakes import FakeProvider
from tests.worker.support import StartWorker, eventually, publish_jobs, stored_count, wait_until_acked
from worker.embedded import NatsServer

pytestmark = pytest.mark.system


async def test_server_restart_mid_run_loses_nothing(
    nats_server: NatsServer, start_worker: StartWorker, client: Client
) -> None:
    gate = asyncio.Event()
    provider = FakeProvider(gate=gate)
    worker = await start_worker(providers={"anthropic": provider}, concurrency=4)
    before = await publish_jobs(client, 10)
    await provider.wait_for_calls(4)

    # Four jobs are inside the provider when the server goes away; they finish while it is down.
    nats_server.stop()
    await eventually(lambda: not worker.is_ready(), what="worker unready while disconnected")
    gate.set()
    await asyncio.sleep(0.5)  # the results wait, un-acked, for the server to come back
    nats_server.start()

    await eventually(worker.is_ready, within=15, what="worker reconnected")
    await eventually(lambda: client.is_connected, within=15, what="test client reconnected")
    after = await publish_jobs(client, 10)

    await wait_until_acked(client, within=30)
    counts = [await stored_count(client, body["data"]["runId"]) for body in before + after]
    assert counts == [1] * 20
    assert len(provider.calls) == 20
    assert worker.metrics.registry.get_sample_value("agent_worker_nats_disconnects_total") == 1
    assert worker.is_ready()
