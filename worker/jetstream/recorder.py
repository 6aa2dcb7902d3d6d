"""A run's ending: its one record stored, counted, and a copy sent to the caller's `replyTo`."""

from __future__ import annotations

import nats.errors
import structlog
from nats.aio.client import Client

from catalog import Catalog
from catalog.quote import clipped
from worker import tracing
from worker.jetstream.persist import through_outages
from worker.jetstream.results import ResultStore
from worker.job import RunRef
from worker.metrics import Metrics
from worker.result import RunResult

__all__ = ["Recorder"]

log = structlog.get_logger(__name__)

UNKNOWN = "unknown"


class Recorder:
    def __init__(self, nc: Client, store: ResultStore, *, metrics: Metrics, catalog: Catalog) -> None:
        self._nc = nc
        self.store = store
        self._metrics = metrics
        self._catalog = catalog

    async def record(self, ref: RunRef, result: RunResult) -> bytes:
        """Store `result` unless the run already has a record; reply with whichever record is stored.

        With traces on, the record and the reply copy carry the job span's `traceparent` (contract section 10).
        """
        headers = None
        if tracing.enabled:
            tracing.job_result(result)
            headers = tracing.trace_headers()
        stored = await through_outages(lambda: self.store.store(result, headers=headers), what="result")
        if tracing.enabled:
            # A record stored by an earlier delivery or another replica wins; this run's is not stored.
            tracing.event("result.stored" if stored.fresh else "result.already_stored")
        if stored.fresh:
            self._count(result)
            log.info("result_stored", status=result.status, billed_tokens=result.billing.billed_tokens)
        else:
            self._metrics.duplicates.inc()
            log.info("result_already_stored")
        await self._reply(ref, stored.body, headers)
        return stored.body

    async def reply(self, ref: RunRef, body: bytes) -> None:
        """The caller's copy; best effort, since the stored record is what counts."""
        if ref.reply_to is not None:
            await self._reply(ref, body, tracing.trace_headers() if tracing.enabled else None)

    async def _reply(self, ref: RunRef, body: bytes, headers: dict[str, str] | None) -> None:
        if ref.reply_to is None:
            return
        try:
            await self._nc.publish(ref.reply_to, body, headers=headers)
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
