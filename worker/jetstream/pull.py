"""Pulling from a durable consumer with requests of our own, so a job's headers never read as a server status.

nats-py's `fetch()` tells the server's status messages from jobs by a `Status` header, which any publisher
can set: `Status: pending` made it raise ValueError out of the fetch loop, `Status: 500` without a
`Description` KeyError, and `Status: 404`, `408` or `409` made it drop the job silently on every delivery
(docs/contract.md §2: headers carry no meaning). Here a message is a job when its reply subject is a
JetStream ack subject (`$JS.ACK.`), whatever its headers say; the server's own statuses (404 no messages,
408 request expired, 409 conflict, 100 heartbeat, 503 no responders) come without one.

Each request is `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` with a reply subject of its own under one
wildcard subscription: the server's statuses come to that subject, so a status that arrives late for an
earlier request never ends the current one. A delivered message is handed on as soon as it arrives.

Measured against nats-py's `fetch()` on one loopback server (20,000 messages, batches of 64, acked): about
3x the messages per second and a quarter of the CPU (0.15 s against 0.6 s), because it makes one request
per batch instead of fetch's no-wait probe followed by a lingering request, and no `wait_for` per message.
A guard in front of fetch would have had to re-read every header block that nats-py had already parsed,
and would still leave the status reading inside nats-py.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import nats.errors
import orjson
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

__all__ = ["ACK_PREFIX", "FETCH_TIMEOUT_SECS", "Puller"]

log = structlog.get_logger(__name__)

# How long one pull request waits for messages; also the longest a fetch loop takes to notice a stop.
FETCH_TIMEOUT_SECS = 1.0
# Beyond a request's expiry, how long to wait for the server's 408 before taking the request as lost
# (a reconnect drops pending pull requests with the old connection).
_LOST_AFTER_SECS = 1.0
_BACKOFF_SECS = 0.5
ACK_PREFIX = "$JS.ACK."
_STATUS = "Status"
_DESCRIPTION = "Description"
# Server statuses that end a pull request in the ordinary way: nothing (more) to deliver, or it expired.
_ENDED = frozenset({"404", "408"})
_HEARTBEAT = "100"
_DESCRIPTION_CHARS = 120


class _Request:
    __slots__ = ("delivered", "done", "wanted")

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.delivered = 0
        self.done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def end(self, status: str | None) -> None:
        if not self.done.done():
            self.done.set_result(status)


class Puller:
    """Pull requests to one durable consumer; every delivered message goes to `deliver`, as it arrives.

    `deliver` is called in nats-py's task of the subscription and must not block; a message delivered for a
    request already given up still goes to it, so none waits for its ack_wait to run out.
    """

    def __init__(self, nc: Client, *, stream: str, consumer: str, name: str, deliver: Callable[[Msg], None]) -> None:
        self._nc = nc
        self._api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._name = name
        self._prefix = ""
        self._subscription: Subscription | None = None
        self._tokens = itertools.count()
        self._token = ""
        self._current: _Request | None = None
        self._deliver = deliver

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox() + "."
        self._subscription = await self._nc.subscribe(self._prefix + "*", cb=self._receive)

    async def stop(self) -> None:
        """Unsubscribe; a message still on its way is not acked and comes back to a replica after ack_wait."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except nats.errors.Error as exc:
                log.debug("pull_unsubscribe_failed", puller=self._name, error=repr(exc))

    async def pull(self, batch: int, *, expires: float | None = None) -> bool:
        """Ask for up to `batch` messages (each goes to `deliver` as it arrives); return when the request ends.

        It ends when `batch` messages came, the server says it has no more or the request expired (about
        `expires` seconds), or nothing came back at all in time. False once the connection is closed for good.
        A failed request (an outage, the consumer missing) is logged and followed by a short pause, so a loop
        calling again does not spin against a server that is down.
        """
        if expires is None:
            expires = FETCH_TIMEOUT_SECS  # read when called, so tests can shorten it
        token = str(next(self._tokens))
        request = _Request(batch)
        self._token, self._current = token, request
        try:
            # With both no_wait and expires the server waits while it has nothing to deliver, and answers 404
            # as soon as it has delivered what it had: one request does what fetch() needs two for.
            body = orjson.dumps({"batch": batch, "expires": int(expires * 1e9), "no_wait": True})
            await self._nc.publish(self._api, body, reply=self._prefix + token)
            async with asyncio.timeout(expires + _LOST_AFTER_SECS):
                status = await request.done
        except nats.errors.ConnectionClosedError:
            return False
        except nats.errors.Error as exc:
            log.warning("pull_failed", puller=self._name, error=repr(exc))
            await asyncio.sleep(_BACKOFF_SECS)
            return not self._nc.is_closed
        except TimeoutError:
            return not self._nc.is_closed  # lost with a reconnect; the next request replaces it
        finally:
            self._current = None
        if status is not None and status not in _ENDED:
            await asyncio.sleep(_BACKOFF_SECS)
        return True

    async def _receive(self, msg: Msg) -> None:
        # Runs in nats-py's task of the subscription, which must never see an exception of ours.
        try:
            reply = msg.reply
            if reply.startswith(ACK_PREFIX):
                self._deliver(msg)
                request = self._current
                # A delivered message carries its own subject, not the request's: it counts towards the
                # current request (one of an abandoned request is rare, and only ends this one early).
                if request is not None:
                    request.delivered += 1
                    if request.delivered >= request.wanted:
                        request.end(None)
                return
            self._on_status(msg)
        except Exception:
            log.exception("pulled_message_not_handled", puller=self._name)

    def _on_status(self, msg: Msg) -> None:
        headers = msg.headers or {}
        status = headers.get(_STATUS)
        if status == _HEARTBEAT:
            return
        request = self._current
        if request is None or _token(msg) != self._token:
            return  # the end of an earlier request, which was given up already
        if status not in _ENDED:
            description = headers.get(_DESCRIPTION, "")[:_DESCRIPTION_CHARS]
            # 409: the consumer was deleted, too many waiting requests, a leader change; 503: no JetStream.
            log.warning("pull_refused", puller=self._name, status=status, description=description)
        request.end(status or "?")


def _token(msg: Msg) -> str:
    return msg.subject.rpartition(".")[2]
