"""The one retry policy every provider call goes through (docs/contract.md §7)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import structlog

from worker import tracing
from worker.providers.base import Provider, ProviderError, ProviderReply, ProviderRequest
from worker.providers.redaction import scrubbed_reply

__all__ = ["RetryPolicy", "call_with_retry"]

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff inside one delivery (`base`, `cap`, `max_calls`) and between deliveries (`redelivery_*`)."""

    base: float = 0.5
    cap: float = 30.0
    max_calls: int = 5
    redelivery_base: float = 5.0
    redelivery_cap: float = 120.0

    def backoff(self, retry: int) -> float:
        """Full jitter: a uniform wait up to the exponential bound, so retrying callers spread out."""
        return random.uniform(0.0, min(self.cap, self.base * 2.0**retry))

    def redelivery_delay(self, attempt: int) -> float:
        """How long a nak'ed job waits before its next delivery; grows with the delivery count."""
        return min(self.redelivery_cap, self.redelivery_base * 2.0 ** max(0, attempt - 1))


async def call_with_retry(
    provider: Provider, request: ProviderRequest, *, deadline: float, policy: RetryPolicy
) -> ProviderReply:
    """Call until success, a non-retryable error, `max_calls`, or a wait that would pass `deadline`.

    `deadline` is on the running loop's clock. Raises the last `ProviderError`. Cancellation (the
    caller's timeout) passes straight through: the provider's HTTP request is cancelled with it.
    """
    loop = asyncio.get_running_loop()
    calls = 0
    while True:
        calls += 1
        try:
            # Each call, first or retry, is its own span when traces are on.
            if tracing.enabled:
                return await tracing.provider_call(provider, request)
            return scrubbed_reply(await provider.complete(request), request)
        except ProviderError as exc:
            if not exc.retryable or calls >= policy.max_calls:
                raise
            wait = max(policy.backoff(calls - 1), exc.retry_after or 0.0)
            if loop.time() + wait > deadline:
                raise
            _log.info(
                "provider_retry",
                provider=provider.name,
                model=request.model,
                code=exc.code.value,
                calls=calls,
                wait_secs=round(wait, 3),
            )
            await asyncio.sleep(wait)
