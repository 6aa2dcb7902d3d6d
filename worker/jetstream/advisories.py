"""Jobs that ran out of deliveries without a result (contract section 7: max deliveries).

JetStream announces them with a consumer advisory; one replica (a queue group) takes each one: the
job is read back from the jobs stream by its sequence (a WorkQueue stream keeps it until acked or
deleted), dead-lettered with `max_deliveries_exceeded`, given a `failed` result with the same code
when its runId is usable, and then deleted so it does not linger.

Limit: the advisory is a core NATS message, not stored. When no replica is connected at the moment
it is sent, nobody handles it and the job stays in the jobs stream, never delivered again, until an
operator looks (`nats stream view`); the consumer's `num_ack_pending` does not show it either.
"""

from __future__ import annotations

import orjson
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from worker.door import DeadLetter, Door
from worker.errors import DlqReason
from worker.jetstream.deadletter import DeadLetters
from worker.jetstream.persist import through_outages
from worker.jetstream.recorder import Recorder
from worker.metrics import Metrics
from worker.pipeline import Pipeline

__all__ = ["MaxDeliveries", "max_deliveries_subject"]

log = structlog.get_logger(__name__)


def max_deliveries_subject(stream: str, consumer: str) -> str:
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"


class MaxDeliveries:
    def __init__(
        self,
        nc: Client,
        *,
        jobs_stream: str,
        consumer: str,
        door: Door,
        pipeline: Pipeline,
        recorder: Recorder,
        dead_letters: DeadLetters,
        metrics: Metrics,
    ) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._stream = jobs_stream
        self._consumer = consumer
        self._door = door
        self._pipeline = pipeline
        self._recorder = recorder
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        subject = max_deliveries_subject(self._stream, self._consumer)
        # One queue group per consumer: each advisory is handled by exactly one connected replica.
        self._subscription = await self._nc.subscribe(subject, queue=self._consumer, cb=self._on_advisory)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None

    async def _on_advisory(self, message: Msg) -> None:
        try:
            event = orjson.loads(message.data)
            stream_seq, deliveries = int(event["stream_seq"]), int(event["deliveries"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("advisory_unreadable", body=message.data[:200].decode(errors="replace"))
            return
        try:
            await self.handle(stream_seq, deliveries)
        except Exception:
            log.exception("advisory_failed", streamSeq=stream_seq)

    async def handle(self, stream_seq: int, deliveries: int) -> None:
        """End the job at `stream_seq`, which was delivered `deliveries` times without being acked."""
        try:
            job = await self._js.get_msg(self._stream, seq=stream_seq)
        except NotFoundError:
            return  # already gone: acked or deleted meanwhile
        body = job.data or b""
        subject = job.subject or ""
        verdict = self._door.open(body, job.headers)
        ref = None if isinstance(verdict, DeadLetter) else verdict.ref
        bound = log.bind(streamSeq=stream_seq, runId=ref.run_id if ref else None, attempt=deliveries)
        if ref is not None and await self._recorder.store.lookup(ref.run_id) is not None:
            bound.info("undelivered_job_has_result")
        else:
            reason = DlqReason.MAX_DELIVERIES_EXCEEDED
            detail = f"The job was delivered {deliveries} times without producing a result."
            await through_outages(
                lambda: self._dead_letters.send(
                    body, reason=reason, detail=detail, subject=subject, stream_seq=stream_seq
                ),
                what="dead letter",
            )
            self._metrics.dead_letters.labels(reason=reason.value).inc()
            bound.warning("job_dead_lettered", reason=reason.value, detail=detail)
            if ref is not None:
                await self._recorder.record(ref, self._pipeline.undeliverable(ref, attempt=deliveries))
        await self._js.delete_msg(self._stream, stream_seq)
