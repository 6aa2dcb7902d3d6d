"""One pull from a JetStream pull subscription, with the failures every fetch loop treats alike."""

from __future__ import annotations

import asyncio

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

__all__ = ["FETCH_TIMEOUT_SECS", "pull"]

log = structlog.get_logger(__name__)

# How long one pull waits for messages; also the longest a fetch loop takes to notice a stop.
FETCH_TIMEOUT_SECS = 1.0
_FETCH_ERROR_BACKOFF_SECS = 0.5


async def pull(subscription: JetStreamContext.PullSubscription, batch: int, *, failed_event: str) -> list[Msg] | None:
    """Up to `batch` messages, waiting at most `FETCH_TIMEOUT_SECS`; None once the connection is closed.

    Nothing arrived is an empty list. So is a failed fetch (a NATS outage), logged as `failed_event` and
    followed by a short pause, so that a loop calling again does not spin against a server that is down.
    """
    try:
        return await subscription.fetch(batch=batch, timeout=FETCH_TIMEOUT_SECS)
    except TimeoutError:
        return []  # nothing arrived
    except nats.errors.ConnectionClosedError:
        return None
    except nats.errors.Error as exc:
        log.warning(failed_event, error=repr(exc))
        await asyncio.sleep(_FETCH_ERROR_BACKOFF_SECS)
        return []
