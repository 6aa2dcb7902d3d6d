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

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import suppress
from datetime import UTC, datetime

import nats.errors
import orjson
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig
from nats.js.errors import APIError, NotFoundError

from worker import tracing
from worker.delivery import Delivery, JobHandler
from worker.jetstream.pull import Puller

__all__ = ["MaxDeliveries"]

log = structlog.get_logger(__name__)

# Advisories are rare and each is handled in turn: one at a time, so none waits on a replica busy with another
# and a request ends as soon as its advisory arrives.
_BATCH = 1
_ERROR_BACKOFF_SECS = 0.5
# JetStream API error for a failed message delete; "no message found" when it is already gone.
_DELETE_FAILED = 10057


class MaxDeliveries:
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
                await asyncio.sleep(_ERROR_BACKOFF_SECS)

    async def _on_advisory(self, message: Msg) -> None:
        try:
            event = orjson.loads(message.data)
            stream_seq, deliveries = int(event["stream_seq"]), int(event["deliveries"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("advisory_unreadable", body=message.data[:200].decode(errors="replace"))
            await _ack(message)
            return
        try:
            await self.handle(stream_seq, deliveries)
        except Exception:
            tries = int(message.metadata.num_delivered or 1)
            last = self._consumer.max_deliver is not None and 0 < self._consumer.max_deliver <= tries
            # Not acked: redelivered after ack_wait, until the advisory consumer's max_deliver gives up on it.
            log.exception("advisory_given_up" if last else "advisory_failed", streamSeq=stream_seq, tries=tries)
            return
        await _ack(message)

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
            if exc.err_code != _DELETE_FAILED:
                raise
            log.info("undelivered_job_already_deleted", streamSeq=stream_seq, error=exc.description)


async def _ack(message: Msg) -> None:
    # Unconfirmed on purpose: an ack that is lost only brings the advisory back, and handling it again is harmless.
    with suppress(nats.errors.Error):
        await message.ack()
