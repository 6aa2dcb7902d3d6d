"""Worker replicas as production runs them: `agent-worker run` processes configured by the environment."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp

from bench.process import Child, python_module
from worker.embedded import free_port

__all__ = ["replicas"]


async def _ready(child: Child, port: int, within: float) -> None:
    """Poll the replica's own /readyz (connected, consumer bound) until it says yes."""
    url = f"http://127.0.0.1:{port}/readyz"
    async with aiohttp.ClientSession() as session, asyncio.timeout(within):
        while child.alive():
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{child.name} exited before it was ready: {child.stderr_tail()}")


@asynccontextmanager
async def replicas(
    count: int,
    *,
    nats_url: str,
    anthropic_url: str,
    concurrency: int,
    within: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[list[Child]]:
    """`count` replicas sharing the consumer, all ready; stopped with SIGTERM on the way out. `env`: more settings."""
    children: list[Child] = []
    ports: list[int] = []
    try:
        for index in range(count):
            ports.append(free_port())
            # Its own name: rebinding `env` would hand the first replica's port to every later one.
            settings = {
                "NATS_URL": nats_url,
                "WORKER_CONCURRENCY": str(concurrency),
                "WORKER_HTTP_PORT": str(ports[-1]),
                "WORKER_LOG_FORMAT": "json",
                "ANTHROPIC_API_KEY": "test",
                "ANTHROPIC_BASE_URL": anthropic_url,
                **(env or {}),
            }
            child = Child(f"replica-{index}", python_module("worker", "run"), env=settings)
            child.http_port = ports[-1]
            children.append(await child.start(ready_marker=None))
        # Started together, as a deployment scales out: this also exercises their concurrent start-up.
        await asyncio.gather(*(_ready(child, port, within) for child, port in zip(children, ports, strict=True)))
        yield children
    finally:
        for child in children:
            await child.stop()
