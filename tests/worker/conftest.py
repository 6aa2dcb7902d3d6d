"""Fixtures for the worker's tests: a client connection, a result watch, and in-process workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from tests.worker.fakes import FakeProvider
from tests.worker.support import FAST_RETRY, StartWorker, worker_settings
from worker.embedded import NatsServer
from worker.jetstream import pull
from worker.providers.base import Provider
from worker.providers.retry import RetryPolicy
from worker.service import Worker


@pytest.fixture(autouse=True)
def _quick_fetch_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # An idle fetch loop notices a stop only when its pull times out: a short pull makes each test's worker stop in
    # a tenth of a second instead of a second. Nothing these tests assert depends on the pull's length.
    monkeypatch.setattr(pull, "FETCH_TIMEOUT_SECS", 0.1)


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
