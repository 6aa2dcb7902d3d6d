"""One wildcard reply subscription shared by many requests, each reply routed by its subject's last token.

nats-py's `request()` does the same for one reply per request, but pays per call for a NUID token, a
`wait_for` and a done-callback; the worker's stores and batched reads make one of these per job, so
they share this cheaper path: a counter token and a handler per request.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.msg import Msg

__all__ = ["Inbox"]


class Inbox:
    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix: str | None = None
        self._subscribing = asyncio.Lock()
        self._tokens = itertools.count()
        self._handlers: dict[str, Callable[[Msg], None]] = {}

    async def address(self, handler: Callable[[Msg], None]) -> tuple[str, str]:
        """A reply subject whose messages go to `handler`, and its token for `forget` once done."""
        prefix = self._prefix if self._prefix is not None else await self._subscribe()
        token = str(next(self._tokens))
        self._handlers[token] = handler
        return prefix + token, token

    def forget(self, token: str) -> None:
        """Late replies to `token` (after a timeout) are dropped from now on."""
        self._handlers.pop(token, None)

    async def _subscribe(self) -> str:
        async with self._subscribing:
            if self._prefix is None:
                prefix = self._nc.new_inbox() + "."
                await self._nc.subscribe(prefix + "*", cb=self._route)
                self._prefix = prefix
        return self._prefix

    async def _route(self, msg: Msg) -> None:
        handler = self._handlers.get(msg.subject.rpartition(".")[2])
        if handler is not None:
            handler(msg)
