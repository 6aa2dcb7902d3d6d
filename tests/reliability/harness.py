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

from testkit.process import FakeProcess, WorkerProcess
from tests.reliability.ledger import Figures, Ledger, read_ledger

__all__ = ["SOAK", "SOAK_FACTOR", "Fleet", "Run", "nats_client", "volume"]

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


class Fleet:
    """The child processes of one scenario; `close()` stops whatever is still running."""

    API_KEY = "sk-ant-reliability-suite"

    def __init__(self, log_dir: Path, nats_url: str) -> None:
        self.log_dir = log_dir
        self.nats_url = nats_url
        self.providers: list[FakeProcess] = []
        self.workers: list[WorkerProcess] = []

    async def provider(self, *options: str) -> FakeProcess:
        """A fake Anthropic API in its own process, e.g. `provider("--delay", "0.2")`."""
        fake = FakeProcess(
            "anthropic", name=f"fake-anthropic-{len(self.providers) + 1}", log_dir=self.log_dir, options=options
        )
        self.providers.append(fake)
        return await fake.start()

    def worker_settings(self, provider: FakeProcess, **settings: str) -> dict[str, str]:
        """The environment of a replica: the suite's defaults, then `settings` (contract variable names)."""
        return {
            "NATS_URL": self.nats_url,
            "ANTHROPIC_API_KEY": self.API_KEY,
            "ANTHROPIC_BASE_URL": provider.url,
            "WORKER_CONCURRENCY": "32",
            "WORKER_ACK_WAIT_SECS": "5",
            "WORKER_SHUTDOWN_GRACE_SECS": "10",
            **settings,
        }

    def _replica(self, provider: FakeProcess, settings: dict[str, str]) -> WorkerProcess:
        replica = WorkerProcess(
            f"replica-{len(self.workers) + 1}", self.worker_settings(provider, **settings), self.log_dir
        )
        self.workers.append(replica)
        return replica

    async def worker(self, provider: FakeProcess, **settings: str) -> WorkerProcess:
        return await self._replica(provider, settings).start()

    async def replicas(self, provider: FakeProcess, count: int, **settings: str) -> list[WorkerProcess]:
        """`count` replicas started together (they race to create the topology, as a deployment's would)."""
        made = [self._replica(provider, settings) for _ in range(count)]
        return list(await asyncio.gather(*(replica.start() for replica in made)))

    def close(self) -> None:
        children = [*self.workers, *self.providers]
        # Every child is signalled first, then waited for: they shut down together.
        for child in children:
            if child.alive:
                child.signal()
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
        provider: FakeProcess | None,
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
