"""The pull loops: fetching jobs and max-deliveries advisories, and applying the job handler's decisions.

- `Puller`: one pull request at a time on a durable consumer, read by a subscription of our own, so a job's
  headers never reach code that reads them as a server status (docs/contract.md §2).
- `JobConsumer`: pulls jobs in batches of free slots and runs each as its own task; keeps it alive with
  `in_progress` while `worker.delivery.JobHandler` decides its fate, then acks, naks with a delay or terminates.
- `MaxDeliveries`: the jobs that ran out of deliveries (docs/contract.md §7), announced by the server's advisory
  and kept in the advisories stream until a replica handles them; each is ended by `JobHandler.exhausted`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime

import nats.errors
import orjson
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import ConsumerConfig, Header
from nats.js.errors import APIError, NotFoundError

from worker import tracing
from worker.delivery import Ack, Decision, Delivery, JobHandler, Nak, Term
from worker.jetstream.topology import ApiError, ServerStatus
from worker.jetstream.usage import published_at

__all__ = ["ACK_PREFIX", "FETCH_TIMEOUT_SECS", "JobConsumer", "MaxDeliveries", "Puller"]

log = structlog.get_logger(__name__)


# How long one pull request waits for messages; also the longest a fetch loop takes to notice a stop.
FETCH_TIMEOUT_SECS = 1.0


# Beyond a request's expiry, how long to wait for the server's 408 before taking the request as lost
# (a reconnect drops pending pull requests with the old connection).
_LOST_AFTER_SECS = 1.0


_BACKOFF_SECS = 0.5


ACK_PREFIX = "$JS.ACK."


# Server statuses that end a pull request in the ordinary way: nothing (more) to deliver, or it expired.
_ENDED = frozenset({ServerStatus.NOT_FOUND, ServerStatus.REQUEST_TIMEOUT})


_DESCRIPTION_CHARS = 120
_REFUSAL_LOG_SECS = 10.0


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
        self.refused: str | None = None
        """The server's status when it refused the last request (`503`, `409 Consumer Deleted`), else None."""
        self._refusal_logged = 0.0

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
                        self.refused = None
                        request.end(None)
                return
            self._on_status(msg)
        except Exception:
            log.exception("pulled_message_not_handled", puller=self._name)

    def _on_status(self, msg: Msg) -> None:
        headers = msg.headers or {}
        status = headers.get(Header.STATUS)
        if status == ServerStatus.HEARTBEAT:
            return
        request = self._current
        if request is None or _token(msg) != self._token:
            return  # the end of an earlier request, which was given up already
        if status in _ENDED:
            self.refused = None
        else:
            # 409: the consumer was deleted, too many waiting requests, a leader change; 503: no JetStream, or
            # no such consumer. Logged when it changes and every `_REFUSAL_LOG_SECS` while it lasts.
            description = (headers.get(Header.DESCRIPTION) or "").strip().split("\n")[0][:_DESCRIPTION_CHARS]
            refused = f"{status} {description}".strip()
            now = time.monotonic()
            if refused != self.refused or now - self._refusal_logged >= _REFUSAL_LOG_SECS:
                log.warning("pull_refused", puller=self._name, status=status, description=description)
                self._refusal_logged = now
            self.refused = refused
        request.end(status or "?")


def _token(msg: Msg) -> str:
    return msg.subject.rpartition(".")[2]


_ERROR_BACKOFF_SECS = 0.5


class JobConsumer:
    """The job consumer: pull jobs in batches of free slots and run each as its own task (docs/contract.md §7).

    Per job: keep it alive with `in_progress` while `worker.delivery.JobHandler` decides its fate (store its result
    or dead letter), then apply that decision to the message: ack, nak with a delay, or terminate.
    """

    def __init__(
        self,
        nc: Client,
        *,
        stream: str,
        consumer: ConsumerConfig,
        concurrency: int,
        handler: JobHandler,
    ) -> None:
        assert consumer.durable_name is not None
        self._puller = Puller(nc, stream=stream, consumer=consumer.durable_name, name="jobs", deliver=self._arrived)
        self._concurrency = concurrency
        # The consumer as the server has it: another replica may have created it with other settings.
        self._max_deliver = consumer.max_deliver if consumer.max_deliver and consumer.max_deliver > 0 else None
        self._heartbeat_secs = (consumer.ack_wait or 30.0) / 3
        self._handler = handler
        self._jobs: set[asyncio.Task[None]] = set()
        # Read when scraped rather than counted up and down on every job.
        handler.metrics.in_flight.set_function(lambda: len(self._jobs))
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self.last_tick = time.monotonic()
        """When the fetch loop last went round without an error (monotonic clock); `/healthz` reads it."""

    @property
    def running(self) -> bool:
        return self._loop is not None and not self._loop.done()

    async def start(self) -> None:
        await self._puller.start()
        self._loop = asyncio.create_task(self._fetch_loop(), name="fetch-loop")

    async def finished(self) -> None:
        """Returns when the fetch loop has ended: after `stop()`, or when the connection was closed."""
        if self._loop is not None:
            await asyncio.shield(self._loop)

    async def stop(self, grace: float) -> None:
        """Stop fetching; give in-flight jobs `grace` seconds; hand the rest back to be redelivered at once."""
        self._stopping.set()
        self._slot_freed.set()
        if self._loop is not None:
            await asyncio.wait({self._loop})
        if self._jobs:
            log.info("waiting_for_jobs", in_flight=len(self._jobs), grace_secs=grace)
            unfinished = set(self._jobs)
            if grace > 0:
                _, unfinished = await asyncio.wait(unfinished, timeout=grace)
            for task in unfinished:
                task.cancel()
            if unfinished:
                log.warning("jobs_handed_back", count=len(unfinished))
                await asyncio.gather(*unfinished, return_exceptions=True)
        # Unsubscribed before the connection drains; a job arriving meanwhile was handed back by `_arrived`.
        await self._puller.stop()

    async def _fetch_loop(self) -> None:
        while not self._stopping.is_set():
            self._slot_freed.clear()  # before counting, so a job finishing right after still wakes the wait
            free = self._concurrency - len(self._jobs)
            try:
                if free <= 0:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._slot_freed.wait(), FETCH_TIMEOUT_SECS)
                elif not await self._puller.pull(free):
                    log.error("fetch_loop_ended", reason="the NATS connection is closed for good")
                    return
                elif self._puller.refused is not None:
                    # The server refuses our requests (the consumer deleted, JetStream gone): no round counts
                    # until it answers again, so /healthz turns unhealthy if it lasts (`pull_refused` says why).
                    continue
            except Exception:
                # A bug: logged with its traceback, and the loop goes on. Should it recur on every round,
                # `last_tick` stops moving and /healthz reports the replica unhealthy after `STALL_SECS`.
                log.exception("fetch_loop_error")
                await asyncio.sleep(_ERROR_BACKOFF_SECS)
                continue
            self.last_tick = time.monotonic()

    def _arrived(self, message: Msg) -> None:
        """A job delivered by the puller: run it as its own task, or hand it back at once when stopping."""
        task = asyncio.create_task(_hand_back(message) if self._stopping.is_set() else self._run_job(message))
        self._jobs.add(task)
        task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._jobs.discard(task)
        self._slot_freed.set()

    async def _run_job(self, message: Msg) -> None:
        received = time.monotonic()
        keep_alive = _KeepAlive(message, self._heartbeat_secs)
        metadata = message.metadata  # parsed from the reply subject on every access
        attempt = int(metadata.num_delivered or 1)
        try:
            with tracing.job_span(message, seq=metadata.sequence.stream, deliveries=attempt):
                delivery = Delivery(
                    body=message.data,
                    headers=message.headers,
                    subject=message.subject,
                    stream_seq=metadata.sequence.stream,
                    attempt=attempt,
                    final=self._max_deliver is not None and attempt >= self._max_deliver,
                    published=published_at(message) if self._handler.counts_usage else None,
                    received=received,
                )
                decision = await self._handler.handle(delivery)
                await _apply(message, decision)
        except asyncio.CancelledError:
            await _hand_back(message)
            raise
        except Exception:
            # A bug, not a provider error: retry later, and the max-deliveries path ends it if it persists.
            log.exception("job_crashed")
            await _hand_back(message, delay=self._handler.crashed(attempt).delay)
        finally:
            keep_alive.cancel()


class _KeepAlive:
    """Tells the server every `interval` seconds that a job is still being worked on, until cancelled.

    A timer rather than a task per job: most jobs end long before the first beat, and a timer costs a
    fraction of what a task costs to start, schedule and cancel.
    """

    __slots__ = ("_interval", "_loop", "_message", "_sending", "_timer")

    def __init__(self, message: Msg, interval: float) -> None:
        self._message = message
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._sending: asyncio.Task[None] | None = None
        self._timer = self._loop.call_later(interval, self._beat)

    def cancel(self) -> None:
        self._timer.cancel()
        if self._sending is not None:
            self._sending.cancel()

    def _beat(self) -> None:
        self._sending = self._loop.create_task(self._send())
        self._timer = self._loop.call_later(self._interval, self._beat)

    async def _send(self) -> None:
        try:
            await self._message.in_progress()
        except nats.errors.Error as exc:
            log.debug("in_progress_failed", error=repr(exc))


async def _apply(message: Msg, decision: Decision) -> None:
    if decision is Ack:
        await _ack(message)
    elif decision is Term:
        await message.term()
    elif isinstance(decision, Nak):
        await message.nak(delay=decision.delay)


async def _ack(message: Msg) -> None:
    # Fire and forget, not `ack_sync`: the contract only asks that the ack follows the stored record, and
    # a lost ack is a redelivery that finds that record (rule 3) and acks it without running the job again.
    # Waiting for the server's confirmation would cost a round trip, a future and a timer per job.
    try:
        await message.ack()
    except nats.errors.Error as exc:
        log.warning("ack_not_sent", error=repr(exc))


async def _hand_back(message: Msg, delay: float | None = None) -> None:
    try:
        await message.nak(delay=delay)
    except nats.errors.Error as exc:
        log.warning("nak_failed", error=repr(exc))


# Advisories are rare and each is handled in turn: one at a time, so none waits on a replica busy with another
# and a request ends as soon as its advisory arrives.
_BATCH = 1


_ADVISORY_ERROR_BACKOFF_SECS = 0.5


class MaxDeliveries:
    """Jobs that ran out of deliveries without a result (docs/contract.md §7: max deliveries).

    JetStream announces each one with a consumer advisory. The advisories stream stores them (see
    `topology`), so an advisory sent while no replica is connected waits for the next replica to start.
    Every replica pulls from the advisories stream's shared durable consumer, so each advisory is handled
    by one replica at a time: the job is read back from the jobs stream by its sequence (a WorkQueue stream
    keeps it until acked or deleted), ended by `worker.delivery.JobHandler.exhausted` (a dead letter with
    `max_deliveries_exceeded`, and a `failed` result with the same code when its runId is usable), and then deleted
    so it does not linger. The advisory is acked only after that; one whose handling failed is redelivered.

    Handling is idempotent, so a redelivered or concurrently handled advisory changes nothing: a job
    already gone is skipped, a job with a stored result is only deleted, the dead letter carries a
    `Nats-Msg-Id`, the result store refuses a second record, and deleting a deleted job is no error.
    """

    def __init__(
        self,
        nc: Client,
        *,
        jobs_stream: str,
        advisories_stream: str,
        consumer: ConsumerConfig,
        handler: JobHandler,
    ) -> None:
        self._js = nc.jetstream()
        self._stream = jobs_stream
        # The advisory consumer as the server has it: its max_deliver says when an advisory is given up.
        self._consumer = consumer
        self._handler = handler
        self._arrived: deque[Msg] = deque()
        assert consumer.durable_name is not None
        self._puller = Puller(
            nc,
            stream=advisories_stream,
            consumer=consumer.durable_name,
            name="advisories",
            deliver=self._arrived.append,
        )
        self._stopping = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._puller.start()
        self._loop = asyncio.create_task(self._fetch_loop(), name="advisory-loop")

    async def stop(self, grace: float) -> None:
        """Stop fetching; let the advisory in hand finish within `grace` seconds, then unsubscribe.

        An advisory cut short is not acked, so it is redelivered; being idempotent, redoing it is harmless.
        """
        self._stopping.set()
        if self._loop is not None:
            _, unfinished = await asyncio.wait({self._loop}, timeout=grace)
            for task in unfinished:
                log.warning("advisory_handed_back")
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        await self._puller.stop()

    async def _fetch_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                if not self._arrived and not await self._puller.pull(_BATCH):
                    log.error("advisory_loop_ended", reason="the NATS connection is closed for good")
                    return
                while self._arrived:
                    message = self._arrived.popleft()
                    if self._stopping.is_set():
                        # Handed back at once, for a replica still running (or the next one to start).
                        with suppress(nats.errors.Error):
                            await message.nak()
                        continue
                    await self._on_advisory(message)
            except Exception:
                # A bug: logged with its traceback; the advisory, not acked, comes back after ack_wait.
                log.exception("advisory_loop_error")
                await asyncio.sleep(_ADVISORY_ERROR_BACKOFF_SECS)

    async def _on_advisory(self, message: Msg) -> None:
        try:
            event = orjson.loads(message.data)
            stream_seq, deliveries = int(event["stream_seq"]), int(event["deliveries"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("advisory_unreadable", body=message.data[:200].decode(errors="replace"))
            await _ack_advisory(message)
            return
        try:
            await self.handle(stream_seq, deliveries)
        except Exception:
            tries = int(message.metadata.num_delivered or 1)
            last = self._consumer.max_deliver is not None and 0 < self._consumer.max_deliver <= tries
            # Not acked: redelivered after ack_wait, until the advisory consumer's max_deliver gives up on it.
            log.exception("advisory_given_up" if last else "advisory_failed", streamSeq=stream_seq, tries=tries)
            return
        await _ack_advisory(message)

    async def handle(self, stream_seq: int, deliveries: int) -> None:
        """End the job at `stream_seq`, which was delivered `deliveries` times without being acked."""
        try:
            job = await self._js.get_msg(self._stream, seq=stream_seq)
        except NotFoundError:
            return  # already gone: acked or deleted meanwhile
        delivery = Delivery(
            body=job.data or b"",
            headers=job.headers,
            subject=job.subject or "",
            stream_seq=stream_seq,
            attempt=deliveries,
            final=True,
            published=job.time or datetime.now(UTC),
        )
        # The job's own trace goes on to its last word: the failed result carries this span's traceparent. Its own
        # task, so the job's log fields stay with it and do not follow the next advisory.
        with tracing.job_span(job, seq=stream_seq, deliveries=deliveries):
            await asyncio.create_task(self._handler.exhausted(delivery))
        try:
            await self._js.delete_msg(self._stream, stream_seq)
        except APIError as exc:
            if exc.err_code != ApiError.DELETE_FAILED:
                raise
            log.info("undelivered_job_already_deleted", streamSeq=stream_seq, error=exc.description)


async def _ack_advisory(message: Msg) -> None:
    # Unconfirmed on purpose: an ack that is lost only brings the advisory back, and handling it again is harmless.
    with suppress(nats.errors.Error):
        await message.ack()
