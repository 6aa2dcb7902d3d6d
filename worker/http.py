"""`/metrics`, `/healthz` and `/readyz` on `WORKER_HTTP_PORT` (docs/contract.md §8)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from worker.metrics import Metrics

__all__ = ["HealthServer"]


class HealthServer:
    """`healthy`: the event loop answers and the fetch loop is alive. `ready`: connected and consuming."""

    def __init__(
        self, *, metrics: Metrics, healthy: Callable[[], bool], ready: Callable[[], bool], port: int, host: str = ""
    ) -> None:
        self._metrics = metrics
        self._healthy = healthy
        self._ready = ready
        self._port = port
        self._host = host or None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/healthz", self._probe(self._healthy))
        app.router.add_get("/readyz", self._probe(self._ready))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve_metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @staticmethod
    def _probe(check: Callable[[], bool]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(_: web.Request) -> web.Response:
            # Answering at all shows the event loop is responsive; the check covers the rest.
            ok = check()
            return web.Response(status=200 if ok else 503, text="ok\n" if ok else "unavailable\n")

        return handler
