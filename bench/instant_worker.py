"""T1's subject, run as its own process: the real worker with a provider that answers at once.

Configured by the same environment as `agent-worker run`; prints `bench-ready` once the worker is ready
and stops as `run` does on SIGTERM (so that a profiler wrapped around it writes its report).
"""

from __future__ import annotations

import asyncio
import sys

from bench.process import READY
from catalog import Usage
from worker import tracing
from worker.eventloop import run_event_loop
from worker.logging import configure_logging
from worker.providers.base import ProviderReply, ProviderRequest
from worker.service import Worker
from worker.settings import Settings

__all__ = ["InstantProvider", "main"]


class InstantProvider:
    """Stands in for Anthropic with no I/O at all, so that what T1 measures is the worker alone."""

    name = "anthropic"

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        return ProviderReply(text="ok", stop_reason="end_turn", usage=Usage(input_tokens=12, output_tokens=3))

    async def aclose(self) -> None:
        return None


async def _serve() -> int:
    settings = Settings.from_env()
    tracing.configure()  # as `agent-worker run` does: on when an OTEL_EXPORTER_OTLP_*ENDPOINT is set
    configure_logging(settings.log_format)
    worker = Worker(settings, providers={"anthropic": InstantProvider()})
    running = asyncio.create_task(worker.run_until_signal())
    ready = asyncio.create_task(worker.ready.wait())
    await asyncio.wait({running, ready}, return_when=asyncio.FIRST_COMPLETED)
    if ready.done():
        print(READY.decode(), flush=True)
    else:
        ready.cancel()
    return await running


def main() -> int:
    try:
        return run_event_loop(_serve())
    finally:
        tracing.shutdown()


if __name__ == "__main__":
    sys.exit(main())
