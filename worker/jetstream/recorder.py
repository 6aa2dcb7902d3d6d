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
from worker.jetstream.size import PayloadTooLarge, check_fits
from worker.job import RunRef
from worker.metrics import Metrics
from worker.result import RunResult

__all__ = ["Recorder"]

log = structlog.get_logger(__name__)

UNKNOWN = "unknown"


class Recorder:
    def __init__(self, nc: Client, store: ResultStore, *, metrics: Metrics, catalog: Catalog) -> None:
        self._nc = nc
        self._store = store
        self._metrics = metrics
        self._catalog = catalog

    async def lookup(self, run_id: str) -> bytes | None:
        """The run's stored record, None when it has none yet."""
        return await self._store.lookup(run_id)

    async def record(self, ref: RunRef, result: RunResult) -> bytes:
        """Store `result` unless the run already has a record; reply with whichever record is stored.

        With traces on, the record and the reply copy carry the job span's `traceparent` (docs/contract.md §10).
        A result too large for the server's max_payload is stored as `failed` with `result_too_large` instead
        (docs/contract.md §6), billed as the provider reported; it is never handed back to be run again.
        """
        headers = tracing.trace_headers() if tracing.enabled else None
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
