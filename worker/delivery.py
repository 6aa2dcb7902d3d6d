"""One delivered job, top to bottom (docs/contract.md §7): what is stored for it, and what becomes of its message.

The transport fetches a job message, keeps it alive while it runs, and applies the `Decision` returned here; nothing
here fetches, acks, naks or terminates. `JobHandler.handle` takes one delivery:

1. The door reads the body (§2). A job it cannot read is dead-lettered with its reason: **terminate**.
2. A run that already has a stored result (a redelivery, or the same job published again) is not run again: the
   stored record is re-sent to the job's `replyTo`, a reservation left by an earlier delivery is settled (§9):
   **ack**.
3. The pipeline runs it (gate, quota, provider with its retries inside `timeoutSecs`, billing).
4. A retryable provider error while deliveries remain: **nak** with a delay growing with the delivery count (or
   the provider's `retry-after` when longer). On the last delivery the pipeline ends it `failed` instead.
5. Otherwise its one result is stored (a result too large for the server is stored as `result_too_large`), the
   copy sent to `replyTo`, its reservation settled: **ack**, only now.

`JobHandler.exhausted` ends a job that ran out of deliveries without a result (§7, max deliveries): a dead letter
with `max_deliveries_exceeded` and, when its runId is usable, a `failed` result with the same code; a job whose
run already has a stored result is only settled. The caller then deletes the job message.

Every step is idempotent, so a delivery cut short (a replica killed, a NATS outage) is simply done again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import structlog

from worker import tracing
from worker.contract import DlqReason
from worker.door import DeadLetter, Door
from worker.jetstream.store import DeadLetters, Recorder, through_outages
from worker.job import RunRef
from worker.logging import bind_job
from worker.metrics import Metrics
from worker.pipeline import Pipeline, Retry
from worker.quotas import may_hold_reservation

__all__ = ["Ack", "Decision", "Delivery", "JobHandler", "Nak", "Term"]

log = structlog.get_logger(__name__)

_FOUND = {"found": True}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery of a job message, as the transport has it."""

    body: bytes
    headers: dict[str, str] | None
    subject: str
    """The subject the job was published to (a dead letter names it)."""
    stream_seq: int
    attempt: int
    """The message's delivery count: 1 on the first delivery."""
    final: bool
    """No delivery remains after this one."""
    published: datetime | None = None
    """When the job was first published (its JetStream timestamp): the month its usage counts in (§9)."""
    received: float | None = None
    """`time.monotonic()` when it arrived, for the job duration metric."""


class _Simple(Enum):
    ACK = "ack"
    TERM = "term"


Ack = _Simple.ACK
"""Its result is stored (or was already): acknowledge the message."""
Term = _Simple.TERM
"""It was dead-lettered: terminate the message, never to be delivered again."""


@dataclass(frozen=True, slots=True)
class Nak:
    """Hand it back, to be delivered again after `delay` seconds."""

    delay: float


Decision = _Simple | Nak


class JobHandler:
    """The door reads a job, the pipeline runs it, the recorder stores its result, dead letters take the rest."""

    def __init__(
        self, *, door: Door, pipeline: Pipeline, recorder: Recorder, dead_letters: DeadLetters, metrics: Metrics
    ) -> None:
        self._door = door
        self._pipeline = pipeline
        self._recorder = recorder
        self._dead_letters = dead_letters
        self.metrics = metrics

    @property
    def counts_usage(self) -> bool:
        """Whether quotas are on, so a delivery needs its `published` time."""
        return self._pipeline.quotas is not None

    def crashed(self, attempt: int) -> Nak:
        """A delivery that failed on a bug, not a provider error: again later; max deliveries ends it if it persists."""
        return Nak(self._pipeline.retry.redelivery_delay(attempt))

    async def handle(self, delivery: Delivery) -> Decision:
        metrics = self.metrics
        if delivery.attempt > 1:
            metrics.redeliveries.inc()
        verdict = self._door.open(delivery.body, delivery.headers)
        if isinstance(verdict, DeadLetter):
            bind_job(attempt=delivery.attempt, streamSeq=delivery.stream_seq)
            await self._dead_letter(delivery, verdict.reason, verdict.detail)
            if tracing.enabled:
                tracing.job_failed("dead_lettered", verdict.reason.value)
            return Term
        ref = verdict.ref
        bind_job(attempt=delivery.attempt, streamSeq=delivery.stream_seq, **ref.log_fields())
        if tracing.enabled:
            tracing.job_read(ref)
        stored = await self._lookup(ref)
        if stored is not None:
            metrics.duplicates.inc()
            log.info("job_already_has_result")
            await self._recorder.reply(ref, stored, job_headers=delivery.headers)
            # The delivery that stored it may have stopped before settling: a reservation left means so.
            await self._settle(ref, delivery, stored)
            return Ack
        outcome = await self._pipeline.run(
            verdict, attempt=delivery.attempt, final=delivery.final, published=delivery.published
        )
        if isinstance(outcome, Retry):
            metrics.naks.labels(code=outcome.error.code.value).inc()
            log.info("job_retry_later", code=outcome.error.code.value, delay_secs=outcome.delay)
            if tracing.enabled:
                tracing.job_failed("retry_later", outcome.error.code.value)
            return Nak(outcome.delay)
        stored = await self._recorder.record(ref, outcome, job_headers=delivery.headers)
        # Quotas off, nothing is reserved: no settling coroutine to start and await on every job.
        if self.counts_usage and may_hold_reservation(outcome, delivery.attempt):
            await self._settle(ref, delivery, stored)
            if tracing.enabled:
                tracing.event("quota.settled")
        if delivery.received is not None:
            metrics.child(metrics.job_duration, outcome.status).observe(time.monotonic() - delivery.received)
        return Ack

    async def exhausted(self, delivery: Delivery) -> None:
        """End a job that was delivered `delivery.attempt` times without a result; the caller then deletes it."""
        verdict = self._door.open(delivery.body, delivery.headers)
        ref = None if isinstance(verdict, DeadLetter) else verdict.ref
        bind_job(attempt=delivery.attempt, streamSeq=delivery.stream_seq, **(ref.log_fields() if ref else {}))
        if tracing.enabled and ref is not None:
            tracing.job_read(ref)
        stored = await self._lookup(ref) if ref is not None else None
        if stored is not None:
            log.info("undelivered_job_has_result")
        else:
            detail = f"The job was delivered {delivery.attempt} times without producing a result."
            await self._dead_letter(delivery, DlqReason.MAX_DELIVERIES_EXCEEDED, detail)
            if ref is not None:
                failed = self._pipeline.undeliverable(ref, attempt=delivery.attempt)
                stored = await self._recorder.record(ref, failed, job_headers=delivery.headers)
        if ref is not None and stored is not None:
            # Settled like any stored result: a reservation an earlier delivery left is moved into billed.
            await self._settle(ref, delivery, stored)

    async def _lookup(self, ref: RunRef) -> bytes | None:
        stored = await through_outages(lambda: self._recorder.lookup(ref.run_id), what="result lookup")
        if tracing.enabled:
            tracing.event("result.lookup", None if stored is None else _FOUND)
        return stored

    async def _dead_letter(self, delivery: Delivery, reason: DlqReason, detail: str) -> None:
        await through_outages(
            lambda: self._dead_letters.send(
                delivery.body, reason=reason, detail=detail, subject=delivery.subject, stream_seq=delivery.stream_seq
            ),
            what="dead letter",
        )
        self.metrics.dead_letters.labels(reason=reason.value).inc()
        log.warning("job_dead_lettered", reason=reason.value, detail=detail)

    async def _settle(self, ref: RunRef, delivery: Delivery, stored: bytes) -> None:
        quotas = self._pipeline.quotas
        if quotas is not None and delivery.published is not None:
            await quotas.settle_stored(ref.user_id, delivery.published, ref.run_id, stored)
