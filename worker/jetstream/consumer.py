"""The job consumer: pull jobs in batches of free slots and run each as its own task (docs/contract.md §7).

Per job: keep it alive with `in_progress` while `worker.delivery.JobHandler` decides its fate (store its result
or dead letter), then apply that decision to the message: ack, nak with a delay, or terminate.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig

from worker import tracing
from worker.delivery import Ack, Decision, Delivery, JobHandler, Nak, Term
from worker.jetstream.pull import FETCH_TIMEOUT_SECS, Puller
from worker.jetstream.usage import published_at

__all__ = ["JobConsumer"]

log = structlog.get_logger(__name__)

_ERROR_BACKOFF_SECS = 0.5


class JobConsumer:
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
            with tracing.job_span(message):
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
