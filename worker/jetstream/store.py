"""The store: each run's one result record, the reply copy, dead letters, and the publish path they share.

- `ResultStore` keeps each run's one record at `maschina.results.agent.execute.<runId>` (docs/contract.md §6): a
  result is stored only if its subject holds none yet (`Nats-Expected-Last-Subject-Sequence: 0`, with
  `Nats-Msg-Id: <runId>`), so the loser of a race reads the winner's record back; `LastGets` looks records up in
  batches with direct gets.
- `Recorder` ends a run: its record stored (a result too large for the server stored as `result_too_large`),
  counted, and a copy sent to the caller's `replyTo`.
- `DeadLetters` stores a job the worker cannot run (docs/contract.md §7): the body unchanged (cut to what fits,
  `Maschina-Dlq-Truncated` saying so) and the four headers saying why and whence.
- The fast path they share: `StreamPublisher` publishes to a stream with a counter token on one wildcard reply
  `Inbox` (no per-publish inbox, future and timer); `check_fits`/`room_for_body` apply the one size rule (the
  server's `max_payload`, headers included); `through_outages` retries a write through a NATS outage.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import nats.errors
import orjson
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import Header
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError, ServiceUnavailableError

from catalog import Catalog
from catalog.quote import clipped
from worker import tracing
from worker.contract import (
    DLQ_DETAIL_HEADER,
    DLQ_ORIGINAL_SUBJECT_HEADER,
    DLQ_REASON_HEADER,
    DLQ_STREAM,
    DLQ_STREAM_SEQ_HEADER,
    DLQ_SUBJECT,
    DLQ_TRUNCATED_HEADER,
    EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER,
    MSG_ID_HEADER,
    RESULTS_SUBJECT_PREFIX,
    DlqReason,
)
from worker.jetstream.topology import ApiError, ServerStatus
from worker.job import RunRef
from worker.metrics import Metrics
from worker.result import RunResult

__all__ = [
    "TRANSIENT",
    "DeadLetters",
    "Inbox",
    "LastGets",
    "PayloadTooLarge",
    "Recorder",
    "ResultStore",
    "Stored",
    "StreamPublisher",
    "check_fits",
    "header_bytes",
    "result_subject",
    "room_for_body",
    "through_outages",
]

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


_STATUS_LINE = len(b"NATS/1.0\r\n")


_END = len(b"\r\n")


_LINE_EXTRA = len(b": \r\n")


# One size rule for everything the worker publishes (docs/contract.md §6, §7): body and headers together
# within the `max_payload` the server announced.
#
# The server counts the header block against `max_payload`, nats-py checks only the body, and a publish the
# server refuses closes the connection for good. So every store (result records, dead letters) and every reply
# copy is measured here first: the body's length plus the header block exactly as nats-py writes it —
# `NATS/1.0\r\n`, one `name: value\r\n` line per header, then `\r\n` — arithmetic on lengths, no encoding
# of the message. The limit is read from the connection each time: nats-py takes it from the INFO of every
# (re)connect, so a reconnect to a server with another limit is followed at once.


class PayloadTooLarge(Exception):  # noqa: N818 -- named after what happened, as nats-py's MaxPayloadError is
    """A message that the server would refuse (and close the connection for); nothing was sent."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes with headers, above the server's max_payload of {limit} bytes")
        self.size = size
        self.limit = limit


def header_bytes(headers: Mapping[str, str] | None) -> int:
    """The header block's size on the wire; 0 without headers (nats-py then sends a plain PUB).

    Values are counted as nats-py sends them: stripped, UTF-8. Callers pass single-line values.
    """
    if headers is None:
        return 0
    size = _STATUS_LINE + _END
    for name, value in headers.items():
        value = value.strip()
        size += len(name) + _LINE_EXTRA + (len(value) if value.isascii() else len(value.encode()))
    return size


def check_fits(nc: Client, body: bytes, headers: Mapping[str, str] | None) -> None:
    """Raise `PayloadTooLarge` unless `body` with `headers` fits the connected server's `max_payload`."""
    size = len(body) + header_bytes(headers)
    if size > nc.max_payload:
        raise PayloadTooLarge(size, nc.max_payload)


def room_for_body(nc: Client, headers: Mapping[str, str] | None) -> int:
    """How many body bytes fit beside `headers` (negative when the headers alone do not)."""
    return nc.max_payload - header_bytes(headers)


class Inbox:
    """One wildcard reply subscription shared by many requests, each reply routed by its subject's last token.

    nats-py's `request()` does the same for one reply per request, but pays per call for a NUID token, a
    `wait_for` and a done-callback; the worker's stores and batched reads make one of these per job, so
    they share this cheaper path: a counter token and a handler per request.
    """

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


class StreamPublisher:
    """Storing a message in a stream and waiting for its PubAck, with the reply routed through the shared `Inbox`.

    The same request nats-py's `JetStreamContext.publish` makes, without its per-call costs (see `Inbox`),
    and with the acknowledgement read by orjson into only what the callers need: stored, or a duplicate.
    Deadlines are kept by one periodic sweep over the acknowledgements awaited rather than a timer per
    store: a store per job, each arming and cancelling its own timer, showed in the worker's profile.
    """

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
        """How many body bytes `publish` can store in `stream` with `headers` (see `room_for_body`)."""
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
    if msg.headers and msg.headers.get(Header.STATUS) == ServerStatus.NO_RESPONDERS:
        raise NoStreamResponseError
    answer = orjson.loads(msg.data)
    if (error := answer.get("error")) is not None:
        APIError.from_error(error)  # raises the error's own subclass, as nats-py's publish does
    return bool(answer.get("duplicate"))


# Subjects per request: a runId subject is at most about 160 bytes, so this stays far below 1 MB.
_MAX_SUBJECTS = 256


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
        elif status in (ServerStatus.END_OF_BATCH, ServerStatus.NOT_FOUND):
            self.done.set_result(None)
        elif status == ServerStatus.NO_RESPONDERS:
            self.done.set_exception(nats.errors.NoRespondersError())
        else:
            self.done.set_exception(APIError(code=int(status), description=headers.get(Header.DESCRIPTION)))


class LastGets:
    """The last message of many subjects in one round trip: JetStream's batched direct get (nats-server ≥ 2.11).

    Reads asked for in the same event-loop iteration (the jobs of one fetched batch start together) go to
    the server as one `$JS.API.DIRECT.GET.<stream>` request with `multi_last`; the server streams back one
    message per subject that holds one, then a `204 EOB` status (`404` when none does). nats-py has no call
    for it, so the replies come to the worker's shared `Inbox`.
    """

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


def result_subject(run_id: str) -> str:
    return RESULTS_SUBJECT_PREFIX + run_id


@dataclass(frozen=True, slots=True)
class Stored:
    """The run's record as the stream holds it; `fresh` when this call stored it."""

    body: bytes
    fresh: bool


class ResultStore:
    """The result store: each run's one record at `maschina.results.agent.execute.<runId>` (docs/contract.md §6).

    A result is stored only if its subject holds none yet (`Nats-Expected-Last-Subject-Sequence: 0`), on
    top of the contract's `Nats-Msg-Id: <runId>` de-duplication, so a second record is refused even after
    the duplicate window. Whoever loses the race reads the winner's record back and uses that.
    """

    def __init__(self, nc: Client, *, stream: str, allow_direct: bool) -> None:
        self._js: JetStreamContext = nc.jetstream()
        self._stream = stream
        inbox = Inbox(nc)
        self._publisher = StreamPublisher(nc, inbox)
        # With direct gets, the lookups of a fetched batch share one request (`LastGets`).
        self._last_gets = LastGets(nc, inbox, stream) if allow_direct else None

    def lookup(self, run_id: str) -> Awaitable[bytes | None]:
        """The stored record of `run_id`, or None when there is none.

        The batched read's own coroutine is handed back rather than awaited in one of ours: every job looks its
        run up, and each coroutine between the job and the reply it waits for is resumed again when it comes.
        """
        if self._last_gets is not None:
            return self._last_gets.last(result_subject(run_id))
        return self._get_last(run_id)

    async def _get_last(self, run_id: str) -> bytes | None:
        try:
            message = await self._js.get_last_msg(self._stream, result_subject(run_id))
        except NotFoundError:
            return None
        return message.data or None

    async def store(self, result: RunResult, *, headers: Mapping[str, str] | None = None) -> Stored:
        """Store `result` with `headers` (a trace context) besides the store's own; see `Stored`."""
        body = result.to_json()
        headers = {
            **(headers or {}),
            MSG_ID_HEADER: result.run_id,
            EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER: "0",
        }
        try:
            duplicate = await self._publisher.publish(
                result_subject(result.run_id), body, stream=self._stream, headers=headers
            )
        except APIError as exc:
            if exc.err_code != ApiError.WRONG_LAST_SEQUENCE:
                raise
        else:
            if not duplicate:
                return Stored(body, fresh=True)
        existing = await self.lookup(result.run_id)
        # Only a record deleted by hand within the duplicate window gets here with None: ours is still the answer.
        return Stored(existing if existing is not None else body, fresh=False)


# The detail is one sentence; a job subject is one of the consumer's filter subjects. Bounds all the same:
# nothing taken from a job or a subject may grow a header past them.
_DETAIL_CHARS = 512


_SUBJECT_CHARS = 256


class DeadLetters:
    """Dead letters (docs/contract.md §7): the original body with four headers saying why and whence.

    A body too big to store beside those headers within the server's `max_payload` is cut to the bytes that
    fit, and `Maschina-Dlq-Truncated: <original length in bytes>` says so. Every header is bounded, so the
    headers alone always leave room for a body (a `max_payload` of a few hundred bytes would be needed to fail).
    """

    def __init__(self, nc: Client) -> None:
        self._publisher = StreamPublisher(nc, Inbox(nc))

    async def send(self, body: bytes, *, reason: DlqReason, detail: str, subject: str, stream_seq: int) -> None:
        """Store the job in the dead-letter stream; the caller then terminates or deletes the original."""
        subject = _one_line(subject, _SUBJECT_CHARS)
        headers = {
            DLQ_REASON_HEADER: reason.value,
            # Header values are one line; a detail quoting the body must not break the header block.
            DLQ_DETAIL_HEADER: _one_line(detail, _DETAIL_CHARS),
            DLQ_ORIGINAL_SUBJECT_HEADER: subject,
            DLQ_STREAM_SEQ_HEADER: str(stream_seq),
            # A retried publish whose first try did land is then not stored twice.
            MSG_ID_HEADER: f"{subject}:{stream_seq}",
        }
        if len(body) > self._publisher.room(stream=DLQ_STREAM, headers=headers):
            headers[DLQ_TRUNCATED_HEADER] = str(len(body))
            body = body[: max(0, self._publisher.room(stream=DLQ_STREAM, headers=headers))]
        await self._publisher.publish(DLQ_SUBJECT, body, stream=DLQ_STREAM, headers=headers)


def _one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


UNKNOWN = "unknown"


class Recorder:
    """A run's ending: its one record stored, counted, and a copy sent to the caller's `replyTo`."""

    def __init__(self, nc: Client, store: ResultStore, *, metrics: Metrics, catalog: Catalog) -> None:
        self._nc = nc
        self._store = store
        self._metrics = metrics
        self._catalog = catalog

    def lookup(self, run_id: str) -> Awaitable[bytes | None]:
        """The run's stored record, None when it has none yet (the store's read, not wrapped: see `ResultStore`)."""
        return self._store.lookup(run_id)

    async def record(self, ref: RunRef, result: RunResult, *, job_headers: Mapping[str, str] | None = None) -> bytes:
        """Store `result` unless the run already has a record; reply with whichever record is stored.

        The record and the reply copy carry the job span's `traceparent` (docs/contract.md §10), taken from the
        job's own `job_headers` when traces are off.
        A result too large for the server's max_payload is stored as `failed` with `result_too_large` instead
        (docs/contract.md §6), billed as the provider reported; it is never handed back to be run again.
        """
        headers = tracing.result_headers(job_headers)
        try:
            stored = await through_outages(lambda: self._store.store(result, headers=headers), what="result")
        except PayloadTooLarge as exc:
            log.warning("result_too_large", size=exc.size, limit=exc.limit, status=result.status)
            result = result.too_large(exc.size, exc.limit)
            stored = await through_outages(lambda: self._store.store(result, headers=headers), what="result")
        if tracing.enabled:
            tracing.job_result(result)
            # A record stored by an earlier delivery or another replica wins; this run's is not stored.
            tracing.event("result.stored" if stored.fresh else "result.already_stored")
        if stored.fresh:
            self._count(result)
            log.info("result_stored", status=result.status, billed_tokens=result.billing.billed_tokens)
        else:
            self._metrics.duplicates.inc()
            log.info("result_already_stored")
        if ref.reply_to is not None:  # most jobs ask for no copy: no coroutine for it then
            await self._reply(ref, stored.body, headers)
        return stored.body

    async def reply(self, ref: RunRef, body: bytes, *, job_headers: Mapping[str, str] | None = None) -> None:
        """The caller's copy; best effort, since the stored record is what counts."""
        if ref.reply_to is not None:
            await self._reply(ref, body, tracing.result_headers(job_headers))

    async def _reply(self, ref: RunRef, body: bytes, headers: dict[str, str] | None) -> None:
        if ref.reply_to is None:
            return
        try:
            # The stored record fitted with the store's larger headers, so its copy fits the same server; only
            # a record stored under a larger max_payload (another server, before a reconnect) may not. Such a
            # copy is skipped: the caller can still read the run's record from the results stream.
            check_fits(self._nc, body, headers)
            await self._nc.publish(ref.reply_to, body, headers=headers)
        except PayloadTooLarge as exc:
            log.warning("reply_too_large", reply_to=clipped(ref.reply_to), size=exc.size, limit=exc.limit)
            return
        except nats.errors.Error as exc:
            log.warning("reply_not_sent", reply_to=clipped(ref.reply_to), error=repr(exc))
            return
        if tracing.enabled:
            tracing.event("reply.sent")

    def _count(self, result: RunResult) -> None:
        # Label values come from the catalog only, so a flood of made-up tiers cannot explode the series.
        tier = result.tier if result.tier in self._catalog.tiers else UNKNOWN
        model_id = result.model or result.requested_model
        model = model_id if model_id in self._catalog.models else UNKNOWN
        self._metrics.child(self._metrics.jobs, result.status, model, tier).inc()
        if result.billing.billed_tokens:
            self._metrics.child(self._metrics.billed_tokens, model, tier).inc(result.billing.billed_tokens)
