"""Storing a message in a stream and waiting for its PubAck, with the reply routed through the shared `Inbox`.

The same request nats-py's `JetStreamContext.publish` makes, without its per-call costs (see `inbox`),
and with the acknowledgement read by orjson into only what the callers need: stored, or a duplicate.
Deadlines are kept by one periodic sweep over the acknowledgements awaited rather than a timer per
store: a store per job, each arming and cancelling its own timer, showed in the worker's profile.
"""

from __future__ import annotations

import asyncio
from functools import partial

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import Header
from nats.js.errors import APIError, NoStreamResponseError

from worker.jetstream.inbox import Inbox
from worker.jetstream.size import check_fits, room_for_body

__all__ = ["StreamPublisher"]

_NO_RESPONDERS = "503"


class StreamPublisher:
    def __init__(self, nc: Client, inbox: Inbox, *, timeout: float = 5.0) -> None:
        self._nc = nc
        self._inbox = inbox
        self._timeout = timeout
        self._deadlines: dict[asyncio.Future[Msg], float] = {}
        self._sweep_every = timeout / 4  # so an acknowledgement is given up at most a quarter late
        self._sweeper: asyncio.TimerHandle | None = None

    async def publish(self, subject: str, body: bytes, *, stream: str, headers: dict[str, str]) -> bool:
        """Store `body` in `stream`; True when the stream already held its `Nats-Msg-Id` (nothing stored).

        Raises `PayloadTooLarge` (nothing sent) when it would not fit the server's max_payload, `APIError`
        when the stream refuses it, `NoStreamResponseError` when no stream listens on `subject`, and
        `TimeoutError` when no acknowledgement came in time.
        """
        headers = {**headers, Header.EXPECTED_STREAM: stream}
        check_fits(self._nc, body, headers)
        loop = asyncio.get_running_loop()
        ack: asyncio.Future[Msg] = loop.create_future()
        reply, token = await self._inbox.address(partial(_settle, ack))
        self._deadlines[ack] = loop.time() + self._timeout
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._sweep_every, self._sweep)
        try:
            await self._nc.publish(subject, body, reply=reply, headers=headers)
            return _duplicate(await ack)
        finally:
            del self._deadlines[ack]
            self._inbox.forget(token)

    def room(self, *, stream: str, headers: dict[str, str]) -> int:
        """How many body bytes `publish` can store in `stream` with `headers` (see `size.room_for_body`)."""
        return room_for_body(self._nc, {**headers, Header.EXPECTED_STREAM: stream})

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for ack, deadline in self._deadlines.items():
            if deadline <= now and not ack.done():
                ack.set_exception(TimeoutError(f"no acknowledgement within {self._timeout} s"))
        self._sweeper = loop.call_later(self._sweep_every, self._sweep) if self._deadlines else None


def _settle(ack: asyncio.Future[Msg], msg: Msg) -> None:
    if not ack.done():  # a second answer, or one after the timeout, changes nothing
        ack.set_result(msg)


def _duplicate(msg: Msg) -> bool:
    if msg.headers and msg.headers.get(Header.STATUS) == _NO_RESPONDERS:
        raise NoStreamResponseError
    answer = orjson.loads(msg.data)
    if (error := answer.get("error")) is not None:
        APIError.from_error(error)  # raises the error's own subclass, as nats-py's publish does
    return bool(answer.get("duplicate"))
