"""Fixtures shared by every test folder, and the rule that every test has a tier.

Tiers (pytest markers, registered in pyproject.toml): `unit` (pure, in-process, no I/O), `nats` (a real
nats-server, loopback servers or one short child process), `system` (several processes, kills, fault scenarios,
`agent-worker run` children, the bench smoke run). `make test-fast` runs `-m "(unit or nats) and not system"`
(a slow fault scenario in a nats module carries its own `@pytest.mark.system`); `make test` runs all.
A test module without a tier (`pytestmark = pytest.mark.unit`, ...) stops the run.

`nats_server`: a real nats-server with JetStream, started for one test on a free loopback port with its
own temporary store, and removed afterwards. Connect with `nats_server.url`; `nats_server.stop()` and then
`nats_server.start()` restart it on the same port and store (a server restart as clients see it).
`client`: a NATS connection to it; `results`: every result the worker stores, by runId; `start_worker`: an
in-process worker (its providers: the `provider` fake), stopped at the end of the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import nats
import pytest
import structlog
from nats.aio.client import Client

from tests.worker.fakes import FakeProvider
from tests.worker.support import FAST_RETRY, ResultWatch, StartWorker, worker_settings
from worker.embedded import NatsServer
from worker.jetstream import pull
from worker.providers.base import Provider
from worker.providers.retry import RetryPolicy
from worker.service import Worker

TIERS = ("unit", "nats", "system")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    untiered = sorted({item.nodeid.split("::")[0] for item in items if not _tiers(item)})
    if untiered:
        raise pytest.UsageError(
            f"test modules without a tier (add `pytestmark = pytest.mark.<{'|'.join(TIERS)}>`): {', '.join(untiered)}"
        )


def _tiers(item: pytest.Item) -> list[str]:
    return [tier for tier in TIERS if item.get_closest_marker(tier) is not None]


@pytest.fixture(autouse=True)
def _reset_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A command run in-process (replay, record, usage) configures structlog to print to the stream captured for
    # its test, which closes after it: the next test's logs must not go there, whichever folder it is in. Loggers
    # must not cache that stream either (the worker caches them on first use), or a module's logger first used in
    # that test would write to the closed stream in every later one.
    configure = structlog.configure

    def uncached(*args: Any, **kwargs: Any) -> None:
        configure(*args, **{**kwargs, "cache_logger_on_first_use": False})

    monkeypatch.setattr(structlog, "configure", uncached)
    yield
    structlog.reset_defaults()


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    with NatsServer() as server:
        yield server


@pytest.fixture
async def client(nats_server: NatsServer) -> AsyncIterator[Client]:
    connection = await nats.connect(nats_server.url)
    yield connection
    await connection.close()


@pytest.fixture
async def results(client: Client) -> ResultWatch:
    return await ResultWatch().open(client)


@pytest.fixture(autouse=True)
def _quick_fetch_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # An idle fetch loop notices a stop only when its pull times out: a short pull makes each in-process worker stop
    # in a tenth of a second instead of a second. Nothing these tests assert depends on the pull's length.
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
