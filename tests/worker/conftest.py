"""Fixtures for the worker's tests: a client connection, a result watch, and in-process workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from tests.worker.fakes import FakeProvider
from tests.worker.support import ResultWatch
from worker.embedded import NatsServer
from worker.providers.base import Provider
from worker.providers.retry import RetryPolicy
from worker.service import Worker
from worker.settings import Settings

# No waits inside a delivery and short ones between deliveries, so retry paths run in a second.
FAST_RETRY = RetryPolicy(base=0.01, cap=0.05, max_calls=1, redelivery_base=0.2, redelivery_cap=0.5)

StartWorker = Callable[..., Awaitable[Worker]]


def worker_settings(server: NatsServer, **overrides: Any) -> Settings:
    """Settings for a test worker: this server, no HTTP port, short ack_wait and grace unless overridden."""
    values: dict[str, Any] = {
        "nats_url": server.url,
        "http_port": 0,
        "ack_wait_secs": 5.0,
        "max_deliver": 3,
        "shutdown_grace_secs": 5.0,
        "worker_id": "worker-test-1",
        **overrides,
    }
    return Settings.from_env({}, **values)


@pytest.fixture
async def client(nats_server: NatsServer) -> AsyncIterator[Client]:
    connection = await nats.connect(nats_server.url)
    yield connection
    await connection.close()


@pytest.fixture
async def results(client: Client) -> ResultWatch:
    return await ResultWatch().open(client)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
async def start_worker(nats_server: NatsServer, provider: FakeProvider) -> AsyncIterator[StartWorker]:
    """`await start_worker(**settings)`: a started in-process worker, stopped at the end of the test.

    The `provider` fixture serves anthropic unless `providers=` is given, or `from_settings=True` asks
    for the real providers built from the settings.
    """
    started: list[Worker] = []

    async def start(
        *,
        providers: Mapping[str, Provider] | None = None,
        from_settings: bool = False,
        retry: RetryPolicy = FAST_RETRY,
        **overrides: Any,
    ) -> Worker:
        settings = worker_settings(nats_server, **overrides)
        chosen = None if from_settings else providers or {"anthropic": provider}
        worker = Worker(settings, providers=chosen, retry=retry)
        started.append(worker)
        await worker.start()
        return worker

    yield start
    for worker in started:
        await worker.stop()
