"""Worker replicas as production runs them: `agent-worker run` processes configured by the environment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from testkit.process import WorkerProcess

__all__ = ["replicas"]


@asynccontextmanager
async def replicas(
    count: int,
    *,
    nats_url: str,
    provider_env: Mapping[str, str],
    concurrency: int,
    within: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[list[WorkerProcess]]:
    """`count` replicas sharing the consumer, all ready; stopped with SIGTERM on the way out. `env`: more settings."""
    settings = {
        "NATS_URL": nats_url,
        "WORKER_CONCURRENCY": str(concurrency),
        **provider_env,
        **(env or {}),
    }
    children = [WorkerProcess(f"replica-{index}", settings, ready_within=within) for index in range(count)]
    try:
        for child in children:
            child.spawn()
        # Started together, as a deployment scales out: this also exercises their concurrent start-up.
        await asyncio.gather(*(child.wait_ready() for child in children))
        yield children
    finally:
        for child in children:
            await child.terminate()
