"""The NATS connection of a one-shot command (`record`, `reprice`): the worker's, but it gives up."""

from __future__ import annotations

import asyncio

from nats.aio.client import Client

from worker.jetstream.connection import connect
from worker.metrics import Metrics
from worker.settings import Settings

__all__ = ["GIVE_UP_SECS", "NatsUnreachableError", "connect_or_give_up"]

#: A replica waits for NATS forever; a command someone is waiting on says so after this long instead.
GIVE_UP_SECS = 15.0


class NatsUnreachableError(OSError):
    """No server of NATS_URL answered in time; the message names the variable, not its value."""


async def connect_or_give_up(settings: Settings, *, name: str) -> Client:
    try:
        return await asyncio.wait_for(connect(settings, name=name, metrics=Metrics()), GIVE_UP_SECS)
    except TimeoutError:
        raise NatsUnreachableError(
            f"no NATS server of NATS_URL answered within {GIVE_UP_SECS:g} s (is it running, are the credentials right?)"
        ) from None
