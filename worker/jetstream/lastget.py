"""The last message of many subjects in one round trip: JetStream's batched direct get (nats-server ≥ 2.11).

Reads asked for in the same event-loop iteration (the jobs of one fetched batch start together) go to
the server as one `$JS.API.DIRECT.GET.<stream>` request with `multi_last`; the server streams back one
message per subject that holds one, then a `204 EOB` status (`404` when none does). nats-py has no call
for it, so the replies come to the worker's shared `Inbox`.
"""

from __future__ import annotations

import asyncio
import contextvars

import nats.errors
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import Header
from nats.js.errors import APIError

from worker.jetstream.inbox import Inbox

__all__ = ["LastGets"]

# Subjects per request: a runId subject is at most about 160 bytes, so this stays far below 1 MB.
_MAX_SUBJECTS = 256
_END_OF_BATCH = "204"
_NO_RESULTS = "404"
_NO_RESPONDERS = "503"


class _Reply:
    """What one batched read has found so far, and whether the server has said it is done."""

    __slots__ = ("done", "found")

    def __init__(self) -> None:
        self.found: dict[str, bytes] = {}
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def take(self, msg: Msg) -> None:
        if self.done.done():
            return
        headers = msg.headers or {}
        status = headers.get(Header.STATUS)
        if status is None:
            self.found[headers.get("Nats-Subject", "")] = msg.data
        elif status in (_END_OF_BATCH, _NO_RESULTS):
            self.done.set_result(None)
        elif status == _NO_RESPONDERS:
            self.done.set_exception(nats.errors.NoRespondersError())
        else:
            self.done.set_exception(APIError(code=int(status), description=headers.get(Header.DESCRIPTION)))


class LastGets:
    def __init__(self, nc: Client, inbox: Inbox, stream: str, *, timeout: float = 5.0) -> None:
        self._nc = nc
        self._inbox = inbox
        self._api = f"$JS.API.DIRECT.GET.{stream}"
        self._timeout = timeout
        self._waiting: dict[str, list[asyncio.Future[bytes | None]]] = {}
        self._flush_scheduled = False
        self._requests: set[asyncio.Task[None]] = set()

    async def last(self, subject: str) -> bytes | None:
        """The body of `subject`'s last message (None when it has none, or an empty one)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes | None] = loop.create_future()
        self._waiting.setdefault(subject, []).append(future)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_scheduled = False
        waiting, self._waiting = self._waiting, {}
        subjects = list(waiting)
        for start in range(0, len(subjects), _MAX_SUBJECTS):
            chunk = {subject: waiting[subject] for subject in subjects[start : start + _MAX_SUBJECTS]}
            # A context of its own, not the job's whose read happened to schedule this flush.
            task = asyncio.create_task(self._answer(chunk), context=contextvars.Context())
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _answer(self, chunk: dict[str, list[asyncio.Future[bytes | None]]]) -> None:
        try:
            found = await self._request(list(chunk))
        except Exception as exc:
            # Every reader gets the failure; each one's own retry (`through_outages`) asks again.
            for futures in chunk.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for subject, futures in chunk.items():
            body = found.get(subject) or None
            for future in futures:
                if not future.done():
                    future.set_result(body)

    async def _request(self, subjects: list[str]) -> dict[str, bytes]:
        reply = _Reply()
        inbox, token = await self._inbox.address(reply.take)
        try:
            request = orjson.dumps({"multi_last": subjects, "batch": len(subjects)})
            await self._nc.publish(self._api, request, reply=inbox)
            async with asyncio.timeout(self._timeout):
                await reply.done
        finally:
            self._inbox.forget(token)
        return reply.found
