"""The one retry policy every provider call goes through (contract section 7)."""

from __future__ import annotations

from dataclasses import dataclass

from worker.providers.base import Provider, ProviderReply, ProviderRequest

__all__ = ["RetryPolicy", "call_with_retry"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff inside one delivery (`base`, `cap`, `max_calls`) and between deliveries (`redelivery_*`)."""

    base: float = 0.5
    cap: float = 30.0
    max_calls: int = 5
    redelivery_base: float = 5.0
    redelivery_cap: float = 120.0

    def redelivery_delay(self, attempt: int) -> float:
        """How long a nak'ed job waits before its next delivery; grows with the delivery count."""
        return min(self.redelivery_cap, self.redelivery_base * 2.0 ** max(0, attempt - 1))


async def call_with_retry(
    provider: Provider, request: ProviderRequest, *, deadline: float, policy: RetryPolicy
) -> ProviderReply:
    """Call until success, a non-retryable error, `max_calls`, or a wait that would pass `deadline`.

    `deadline` is on the running loop's clock. Raises the last `ProviderError`.
    """
    raise NotImplementedError  # implemented with the providers (issue 4)
