"""Retrying a JetStream call through an outage: a job's outcome is never dropped because NATS blinked."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
import structlog
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

__all__ = ["TRANSIENT", "through_outages"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

# What a disconnect, a server restart or a JetStream leader change looks like to a publisher.
TRANSIENT: tuple[type[Exception], ...] = (
    TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.ConnectionReconnectingError,
    NoStreamResponseError,
    ServiceUnavailableError,
)
_BACKOFF_SECS = (0.2, 0.5, 1.0, 2.0, 5.0)


async def through_outages(operation: Callable[[], Awaitable[T]], *, what: str) -> T:
    """Run `operation` until it succeeds, waiting out transient errors; anything else propagates.

    It never gives up on its own: the caller's task is cancelled at shutdown, and the job, never
    acked, is redelivered. The operations are idempotent: a lookup, a run's result, a dead letter.
    """
    failures = 0
    while True:
        try:
            return await operation()
        except TRANSIENT as exc:
            wait = _BACKOFF_SECS[min(failures, len(_BACKOFF_SECS) - 1)]
            failures += 1
            log.warning("jetstream_write_retry", what=what, error=repr(exc), failures=failures, retry_in=wait)
            await asyncio.sleep(wait)
