"""A `Provider` wrapper that times every call and counts its errors, so the providers stay free of metrics."""

from __future__ import annotations

import time

from worker.metrics import Metrics
from worker.providers.base import Provider, ProviderError, ProviderReply, ProviderRequest

__all__ = ["MeteredProvider", "metered"]


class MeteredProvider:
    def __init__(self, inner: Provider, metrics: Metrics) -> None:
        self.inner = inner
        self.name = inner.name
        self._metrics = metrics

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        started = time.monotonic()
        try:
            return await self.inner.complete(request)
        except ProviderError as exc:
            self._metrics.provider_errors.labels(provider=self.name, code=exc.code.value).inc()
            raise
        finally:
            # request.model comes from the catalog, so the label stays bounded.
            elapsed = time.monotonic() - started
            metrics = self._metrics
            metrics.child(metrics.provider_latency, self.name, request.model).observe(elapsed)

    async def aclose(self) -> None:
        await self.inner.aclose()


def metered(providers: dict[str, Provider], metrics: Metrics) -> dict[str, Provider]:
    return {key: MeteredProvider(provider, metrics) for key, provider in providers.items()}
