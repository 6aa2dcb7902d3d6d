"""The NATS side of every benchmark: a fresh nats-server, the contract's streams, bulk publishing, counting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from bench.jobs import job_body, run_id
from worker.contract import JOB_SUBJECT, RESULTS_SUBJECT_PREFIX
from worker.embedded import NatsServer
from worker.settings import Settings

__all__ = [
    "JOBS_STREAM",
    "RESULTS_STREAM",
    "Arrivals",
    "check_completed",
    "fresh_server",
    "publish_jobs",
    "stored_results",
    "wait_for_results",
    "warm_up",
]

_DEFAULTS = Settings.from_env({})
JOBS_STREAM = _DEFAULTS.jobs_stream
RESULTS_STREAM = _DEFAULTS.results_stream
_POLL = 0.01


@asynccontextmanager
async def fresh_server() -> AsyncIterator[tuple[NatsServer, Client, JetStreamContext]]:
    """A nats-server of its own for one measurement, so no stream state carries over between them."""
    server = NatsServer().start()
    try:
        nc = await nats.connect(server.url, max_reconnect_attempts=0)
        try:
            yield server, nc, nc.jetstream()
        finally:
            await nc.close()
    finally:
        server.close()


async def publish_jobs(nc: Client, bodies: list[bytes], *, chunk: int = 2000) -> None:
    """Plain NATS publishes into the jobs stream, flushed in chunks so the server's buffers never overflow.

    The stream stores them just as it stores the API's JetStream publishes; skipping the per-message
    PubAck keeps the publisher from being the bottleneck of the benchmark.
    """
    for start in range(0, len(bodies), chunk):
        for body in bodies[start : start + chunk]:
            await nc.publish(JOB_SUBJECT, body)
        await nc.flush()


async def stored_results(js: JetStreamContext) -> int:
    info = await js.stream_info(RESULTS_STREAM)
    return int(info.state.messages)


async def wait_for_results(
    js: JetStreamContext, count: int, *, within: float, alive: Callable[[], bool] = lambda: True
) -> float:
    """Poll the results stream until it holds `count` records; return when that was seen (perf_counter)."""
    deadline = time.perf_counter() + within
    while True:
        stored = await stored_results(js)
        now = time.perf_counter()
        if stored >= count:
            return now
        if now > deadline:
            raise TimeoutError(f"only {stored} of {count} results stored within {within:.0f} s")
        if not alive():
            raise RuntimeError("the process under test exited before storing every result")
        await asyncio.sleep(_POLL)


async def check_completed(js: JetStreamContext, run_ids: list[str]) -> None:
    """Read these runs' stored records back: a rate measured on failing jobs would mean nothing."""
    for rid in run_ids:
        stored = orjson.loads((await js.get_last_msg(RESULTS_STREAM, RESULTS_SUBJECT_PREFIX + rid)).data or b"{}")
        if stored.get("status") != "completed":
            raise RuntimeError(f"run {rid} ended {stored.get('status')}: {stored.get('error')}")


class Arrivals:
    """Results arriving on a subscription: when each run's first came, and whether every one completed.

    A result that did not complete makes the measurement worthless (a misconfigured provider fails fast),
    so `wait` raises rather than report it.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.times: dict[str, float] = {}
        """perf_counter when each run's first result arrived."""
        self.results: dict[str, dict[str, Any]] = {}
        self.not_completed: dict[str, str] = {}
        self._all_in = asyncio.Event()

    async def subscribe(self, nc: Client, subject: str) -> None:
        await nc.subscribe(subject, cb=self._arrived)
        await nc.flush()

    async def _arrived(self, msg: Msg) -> None:
        now = time.perf_counter()
        result = orjson.loads(msg.data)
        run_id = result["runId"]
        self.times.setdefault(run_id, now)
        self.results.setdefault(run_id, result)
        if result["status"] != "completed":
            self.not_completed[run_id] = f"{result['status']} {result.get('error')}"
        if len(self.times) >= self.expected:
            self._all_in.set()

    async def wait(self, within: float) -> float:
        """Wait for every expected run; return when the last one arrived (perf_counter)."""
        try:
            await asyncio.wait_for(self._all_in.wait(), within)
        except TimeoutError:
            raise TimeoutError(f"{len(self.times)} of {self.expected} results arrived within {within:.0f} s") from None
        if self.not_completed:
            run_id, what = next(iter(self.not_completed.items()))
            raise RuntimeError(f"{len(self.not_completed)} runs did not complete, e.g. {run_id}: {what}")
        return max(self.times.values())


async def warm_up(nc: Client, *, model: str | None = None, within: float = 60.0) -> None:
    """Run one job (on `model`, see `job_body`) through the worker and wait for its result.

    The first call pays one-time costs (the SDK builds its models and imports lazily, connections
    open); the baselines make a first call outside their timing too.
    """
    arrivals = Arrivals(1)
    await arrivals.subscribe(nc, RESULTS_SUBJECT_PREFIX + run_id("warm-up", 0))
    await nc.publish(JOB_SUBJECT, job_body("warm-up", 0, model=model))
    await arrivals.wait(within)
