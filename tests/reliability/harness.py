"""The pieces every scenario shares: volume scaling, a fleet of child processes, a NATS client, the run's figures.

Default runs (`make test`) use each scenario's short volume; `AGENT_WORKER_SOAK=1` (`make soak`) multiplies
it by ten. Nothing else changes between the two, so the short run is the soak run in miniature.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors

from tests.reliability.ledger import Figures, Ledger, read_ledger
from tests.reliability.processes import FakeProviderProcess, WorkerProcess
from worker.jetstream.topology import stream_configs
from worker.settings import Settings

__all__ = ["SOAK", "SOAK_FACTOR", "Fleet", "Run", "create_streams", "nats_client", "volume"]

SOAK = os.environ.get("AGENT_WORKER_SOAK", "") not in ("", "0")
SOAK_FACTOR = 10


def volume(short: int) -> int:
    """A scenario's job count: `short` in the default suite, ten times that in `make soak`."""
    return short * SOAK_FACTOR if SOAK else short


@asynccontextmanager
async def nats_client(servers: str) -> AsyncIterator[Any]:
    """The suite's own connection (publisher and auditor); it reconnects forever, like the API's would."""

    async def quiet(exc: Exception) -> None:
        """Disconnects are the point of these scenarios; the waits and publishes deal with them."""

    nc = await nats.connect(
        servers=servers.split(","),
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
        error_cb=quiet,
        pending_size=64 * 1024 * 1024,
    )
    try:
        yield nc
    finally:
        await nc.close()


async def create_streams(js: Any, *, replicas: int = 1, within: float = 30.0) -> None:
    """The worker's own stream definitions, created ahead of it (a backlog needs a stream; a cluster needs R3).

    Retried while a fresh cluster has no JetStream meta leader yet.
    """
    deadline = time.monotonic() + within
    for config in stream_configs(Settings.from_env({})):
        config.num_replicas = replicas
        while True:
            try:
                await js.add_stream(config)
                break
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)


class Fleet:
    """The child processes of one scenario; `close()` stops whatever is still running."""

    API_KEY = "sk-ant-reliability-suite"

    def __init__(self, log_dir: Path, nats_url: str) -> None:
        self.log_dir = log_dir
        self.nats_url = nats_url
        self.providers: list[FakeProviderProcess] = []
        self.workers: list[WorkerProcess] = []

    async def provider(self, *options: str) -> FakeProviderProcess:
        """A fake Anthropic API in its own process, e.g. `provider("--delay", "0.2")`."""
        fake = FakeProviderProcess(
            f"fake-anthropic-{len(self.providers) + 1}", "worker.testing.fake_anthropic", list(options), self.log_dir
        )
        self.providers.append(fake)
        fake.start()
        await fake.wait_ready()
        return fake

    def worker_settings(self, provider: FakeProviderProcess, **settings: str) -> dict[str, str]:
        """The environment of a replica: the suite's defaults, then `settings` (contract variable names)."""
        return {
            "NATS_URL": self.nats_url,
            "ANTHROPIC_API_KEY": self.API_KEY,
            "ANTHROPIC_BASE_URL": provider.url,
            "WORKER_CONCURRENCY": "32",
            "WORKER_ACK_WAIT_SECS": "5",
            "WORKER_SHUTDOWN_GRACE_SECS": "10",
            "WORKER_LOG_FORMAT": "json",
            **settings,
        }

    async def worker(self, provider: FakeProviderProcess, *, ready: bool = True, **settings: str) -> WorkerProcess:
        replica = WorkerProcess(
            f"replica-{len(self.workers) + 1}", self.worker_settings(provider, **settings), self.log_dir
        )
        self.workers.append(replica)
        replica.start()
        if ready:
            await replica.wait_ready()
        return replica

    async def replicas(self, provider: FakeProviderProcess, count: int, **settings: str) -> list[WorkerProcess]:
        """`count` replicas started together (they race to create the topology, as a deployment's would)."""
        started = [await self.worker(provider, ready=False, **settings) for _ in range(count)]
        await asyncio.gather(*(replica.wait_ready() for replica in started))
        return started

    def close(self) -> None:
        children = [*self.workers, *self.providers]
        for child in children:
            child.terminate()
        for child in children:
            child.stop()

    def report(self) -> str:
        """Each child's exit code and log tail, for a failed scenario's captured output."""
        parts = []
        for child in [*self.workers, *self.providers]:
            code = None if child.process is None else child.process.poll()
            parts.append(f"--- {child.name} (exit {code}) {child.log_path}\n{child.log_tail(15)}")
        return "\n".join(parts)


class Run:
    """One scenario's accounting: the wall clock starts at construction; `finish` reads the streams and
    adds the figures to `sink` (the suite's summary table)."""

    def __init__(self, scenario: str, sink: list[Figures]) -> None:
        self.scenario = scenario
        self._sink = sink
        self.started = time.monotonic()
        self.sent: set[str] = set()

    async def finish(
        self,
        js: Any,
        *,
        provider: FakeProviderProcess | None,
        notes: str = "",
        lost: Callable[[Ledger], set[str]] | None = None,
    ) -> tuple[Figures, Ledger]:
        """Read the streams and the provider's call count; `lost` replaces the default reckoning of lost jobs."""
        ledger = await read_ledger(js)
        calls = 0 if provider is None else int((await provider.stats())["calls"])
        figures = Figures.of(
            self.scenario,
            sent=self.sent,
            ledger=ledger,
            provider_calls=calls,
            started=self.started,
            notes=notes,
            lost=None if lost is None else lost(ledger),
        )
        print(figures.line())
        self._sink.append(figures)
        return figures, ledger
