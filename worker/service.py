"""The worker service: one replica of the JetStream consumer, with its advisory handler and HTTP probes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Mapping
from contextlib import suppress

import nats.errors
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext

from catalog import Catalog, default_catalog, load_catalog
from worker.delivery import JobHandler
from worker.door import Door
from worker.http import HealthServer
from worker.jetstream.pull import JobConsumer, MaxDeliveries
from worker.jetstream.store import DeadLetters, Recorder, ResultStore
from worker.jetstream.topology import connect, ensure_topology
from worker.jetstream.usage import BucketUsageStore, ensure_usage_bucket
from worker.metered import metered
from worker.metrics import Metrics
from worker.pipeline import Pipeline
from worker.providers.base import Provider
from worker.providers.registry import build_providers, close_providers
from worker.providers.retry import RetryPolicy
from worker.quotas import Quotas
from worker.settings import Settings

__all__ = ["Worker", "default_worker_id"]

log = structlog.get_logger(__name__)

# /healthz fails when the fetch loop has not gone round for this long (it normally does every second or so).
STALL_SECS = 30.0
# On the way out, how long usage writes still in flight may take.
_QUOTA_CLOSE_SECS = 5.0


def default_worker_id() -> str:
    return f"worker-{socket.gethostname()}-{os.getpid()}"


class Worker:
    """One replica. `start()` connects, ensures the topology and consumes; `stop()` shuts down gracefully.

    `providers` default to those built from the settings (and are then closed by `stop()`); `catalog`
    defaults to `WORKER_CATALOG` or the built-in one. Every provider is wrapped to record its latency.
    `retry` replaces the policy built from the `WORKER_RETRY_*` and `WORKER_REDELIVERY_*` settings (tests use
    short waits).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        providers: Mapping[str, Provider] | None = None,
        catalog: Catalog | None = None,
        metrics: Metrics | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.retry = retry if retry is not None else settings.retry_policy()
        self.metrics = metrics or Metrics()
        if catalog is None:
            catalog = load_catalog(settings.catalog_file) if settings.catalog_file is not None else default_catalog()
        self.catalog = catalog
        self.worker_id = settings.worker_id or default_worker_id()
        self._given_providers = providers
        self._providers: dict[str, Provider] = {}
        self.ready = asyncio.Event()
        """Set once connected, the topology ensured and the fetch loop running; cleared when stopping."""
        self._nc: Client | None = None
        self._consumer: JobConsumer | None = None
        self._advisories: MaxDeliveries | None = None
        self._http: HealthServer | None = None
        self._quotas: Quotas | None = None
        self._stopping = False

    @property
    def nc(self) -> Client:
        """The NATS connection, once started."""
        assert self._nc is not None, "the worker is not started"
        return self._nc

    async def start(self) -> None:
        settings = self.settings
        built = dict(self._given_providers) if self._given_providers is not None else build_providers(settings)
        self._providers = metered(built, self.metrics)
        self._nc = await connect(settings, name=self.worker_id, metrics=self.metrics)
        js = self._nc.jetstream()
        topology = await ensure_topology(js, settings)
        signing_key = settings.signing_key_bytes()
        door = Door(signing_key=signing_key, reply_prefixes=settings.reply_prefixes, quotas=settings.quotas_on)
        store = ResultStore(self._nc, stream=settings.results_stream, allow_direct=topology.results_allow_direct)
        if settings.quotas_on:
            self._quotas = await self._start_quotas(js, store)
        pipeline = Pipeline(
            catalog=self.catalog,
            providers=self._providers,
            worker_id=self.worker_id,
            retry=self.retry,
            quotas=self._quotas,
        )
        recorder = Recorder(self._nc, store, metrics=self.metrics, catalog=self.catalog)
        handler = JobHandler(
            door=door, pipeline=pipeline, recorder=recorder, dead_letters=DeadLetters(self._nc), metrics=self.metrics
        )
        self._advisories = MaxDeliveries(
            self._nc,
            jobs_stream=settings.jobs_stream,
            advisories_stream=settings.advisories_stream,
            consumer=topology.advisory_consumer,
            handler=handler,
        )
        await self._advisories.start()
        self._consumer = JobConsumer(
            self._nc,
            stream=settings.jobs_stream,
            consumer=topology.consumer,
            concurrency=settings.concurrency,
            handler=handler,
        )
        await self._consumer.start()
        if settings.http_port:
            self._http = HealthServer(
                metrics=self.metrics, healthy=self.healthy, ready=self.is_ready, port=settings.http_port
            )
            await self._http.start()
        self.ready.set()
        log.info(
            "worker_started",
            workerId=self.worker_id,
            consumer=settings.consumer,
            concurrency=settings.concurrency,
            http_port=settings.http_port,
        )

    async def _start_quotas(self, js: JetStreamContext, results: ResultStore) -> Quotas:
        kv = await ensure_usage_bucket(js, self.settings)

        async def stored(run_id: str) -> bool:
            return await results.lookup(run_id) is not None

        nc = self.nc
        usage = BucketUsageStore(kv, self.settings.usage_bucket, max_payload=lambda: nc.max_payload)
        log.info("quotas_on", store=usage.label)
        return Quotas(usage, metrics=self.metrics, stored=stored)

    def healthy(self) -> bool:
        consumer = self._consumer
        return consumer is not None and consumer.running and time.monotonic() - consumer.last_tick < STALL_SECS

    def is_ready(self) -> bool:
        return (
            not self._stopping
            and self._nc is not None
            and self._nc.is_connected
            and self._consumer is not None
            and self._consumer.running
        )

    async def stop(self) -> None:
        """Stop fetching, give in-flight jobs the grace period, hand back the rest, unsubscribe, drain."""
        if self._stopping:
            return
        self._stopping = True
        self.ready.clear()
        log.info("worker_stopping")
        grace = self.settings.shutdown_grace_secs
        stopping = [part.stop(grace) for part in (self._consumer, self._advisories) if part is not None]
        await asyncio.gather(*stopping)
        if self._quotas is not None:
            # Usage writes asked for by jobs that have ended are finished before the connection goes, unless
            # NATS is down (they would wait for it forever): a short wait, not the grace again.
            await self._quotas.close(within=min(grace, _QUOTA_CLOSE_SECS))
        if self._nc is not None and not self._nc.is_closed:
            try:
                await self._nc.drain()
            except (nats.errors.Error, TimeoutError, OSError) as exc:
                # Stopping during an outage: nothing is left to flush that a redelivery will not redo.
                log.warning("nats_drain_failed", error=repr(exc))
                # nats-py's close() flushes onto the dead transport and raises RuntimeError during an outage.
                with suppress(nats.errors.Error, OSError, RuntimeError):
                    await self._nc.close()
        if self._given_providers is None:
            await close_providers(self._providers)
        if self._http is not None:
            await self._http.stop()
        log.info("worker_stopped")

    async def run_until_signal(self) -> int:
        """Run until SIGTERM or SIGINT, then stop gracefully. 0 after a signal; 1 if consuming ended by itself."""
        loop = asyncio.get_running_loop()
        signalled = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, signalled.set)
        waiter = asyncio.create_task(signalled.wait())
        try:
            starting = asyncio.create_task(self.start())
            await asyncio.wait({starting, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():
                starting.cancel()
                with suppress(asyncio.CancelledError):
                    await starting
                return 0
            starting.result()
            assert self._consumer is not None
            finished = asyncio.create_task(self._consumer.finished())
            await asyncio.wait({finished, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finished.cancel()
            if not signalled.is_set():
                log.error("fetch_loop_ended")
                return 1
            log.info("signal_received")
            return 0
        finally:
            waiter.cancel()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            await self.stop()
