"""The job consumer: pull jobs in batches of free slots and run each as its own task (docs/contract.md §7).

Per job: door → dead-letter (and terminate), or → stored result? (re-send it, ack) → pipeline →
nak with a delay (retryable, deliveries remain), or store the result → reply copy → ack.
A job is acked only once its record is stored; while it runs, `in_progress` keeps it ours.
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
from worker.door import DeadLetter
from worker.jetstream.handling import JobHandling
from worker.jetstream.persist import through_outages
from worker.jetstream.pull import FETCH_TIMEOUT_SECS, Puller
from worker.jetstream.usage import published_at
from worker.logging import bind_job
from worker.pipeline import Retry
from worker.quotas import may_hold_reservation

__all__ = ["JobConsumer"]

log = structlog.get_logger(__name__)

_FOUND = {"found": True}
_ERROR_BACKOFF_SECS = 0.5


class JobConsumer:
    def __init__(
        self,
        nc: Client,
        *,
        stream: str,
        consumer: ConsumerConfig,
        concurrency: int,
        handling: JobHandling,
    ) -> None:
        assert consumer.durable_name is not None
        self._puller = Puller(nc, stream=stream, consumer=consumer.durable_name, name="jobs", deliver=self._arrived)
        self._concurrency = concurrency
        # The consumer as the server has it: another replica may have created it with other settings.
        self._max_deliver = consumer.max_deliver if consumer.max_deliver and consumer.max_deliver > 0 else None
        self._heartbeat_secs = (consumer.ack_wait or 30.0) / 3
        self._handling = handling
        self._jobs: set[asyncio.Task[None]] = set()
        # Read when scraped rather than counted up and down on every job.
        handling.metrics.in_flight.set_function(lambda: len(self._jobs))
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
        try:
            with tracing.job_span(message):
                await self._process(message, received)
        except asyncio.CancelledError:
            await _hand_back(message)
            raise
        except Exception:
            # A bug, not a provider error: retry later, and the max-deliveries path ends it if it persists.
            log.exception("job_crashed")
            retry = self._handling.pipeline.retry
            await _hand_back(message, delay=retry.redelivery_delay(_attempt(message.metadata)))
        finally:
            keep_alive.cancel()

    async def _process(self, message: Msg, received: float) -> None:
        handling, metrics = self._handling, self._handling.metrics
        metadata = message.metadata  # parsed from the reply subject on every access
        attempt = _attempt(metadata)
        stream_seq = metadata.sequence.stream
        if attempt > 1:
            metrics.redeliveries.inc()
        verdict = handling.door.open(message.data, message.headers)
        if isinstance(verdict, DeadLetter):
            bind_job(attempt=attempt, streamSeq=stream_seq)
            await through_outages(
                lambda: handling.dead_letters.send(
                    message.data,
                    reason=verdict.reason,
                    detail=verdict.detail,
                    subject=message.subject,
                    stream_seq=stream_seq,
                ),
                what="dead letter",
            )
            await message.term()
            metrics.dead_letters.labels(reason=verdict.reason.value).inc()
            log.warning("job_dead_lettered", reason=verdict.reason.value, detail=verdict.detail)
            if tracing.enabled:
                tracing.job_failed("dead_lettered", verdict.reason.value)
            return
        ref = verdict.ref
        bind_job(attempt=attempt, streamSeq=stream_seq, **ref.log_fields())
        if tracing.enabled:
            tracing.job_read(ref)
        quotas = handling.pipeline.quotas
        published = published_at(message) if quotas is not None else None
        stored = await through_outages(lambda: handling.recorder.store.lookup(ref.run_id), what="result lookup")
        if tracing.enabled:
            tracing.event("result.lookup", None if stored is None else _FOUND)
        if stored is not None:
            metrics.duplicates.inc()
            log.info("job_already_has_result")
            await handling.recorder.reply(ref, stored)
            if quotas is not None and published is not None:
                # The delivery that stored it may have stopped before settling: a reservation left means so.
                await quotas.settle_stored(ref.user_id, published, ref.run_id, stored)
            await _ack(message)
            return
        final = self._max_deliver is not None and attempt >= self._max_deliver
        outcome = await handling.pipeline.run(verdict, attempt=attempt, final=final, published=published)
        if isinstance(outcome, Retry):
            await message.nak(delay=outcome.delay)
            metrics.naks.labels(code=outcome.error.code.value).inc()
            log.info("job_retry_later", code=outcome.error.code.value, delay_secs=outcome.delay)
            if tracing.enabled:
                tracing.job_failed("retry_later", outcome.error.code.value)
            return
        stored = await handling.recorder.record(ref, outcome)
        if quotas is not None and published is not None and may_hold_reservation(outcome, attempt):
            await quotas.settle_stored(ref.user_id, published, ref.run_id, stored)
            if tracing.enabled:
                tracing.event("quota.settled")
        metrics.child(metrics.job_duration, outcome.status).observe(time.monotonic() - received)
        await _ack(message)


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


def _attempt(metadata: Msg.Metadata) -> int:
    return int(metadata.num_delivered or 1)


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
