"""T3: what the worker adds to a call's latency at a steady 100 jobs/s: two NATS hops, door, gate, billing, store."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from datetime import datetime

from nats.aio.client import Client

from bench.baseline import bare_sdk
from bench.broker import Arrivals, fresh_server
from bench.context import Context
from bench.jobs import QUOTAS_ON, job_body, run_id, spread_user
from bench.process import READY
from bench.providers import ANTHROPIC, OPENAI, BenchProvider
from bench.replica import replicas
from bench.report import Row, Spec, Target
from bench.scale import Scale
from bench.tracing import OtlpReceiver, traced_env
from testkit.process import ChildProcess, child_env, python_module
from testkit.streams import create_streams
from worker.contract import JOB_SUBJECT

__all__ = ["OPENAI_SPECS", "SPECS", "run", "run_openai"]

P50 = Spec("T3 p50", "added latency at 100 jobs/s, p50 (publish→result minus bare SDK call)", Target("≤", 2.0, " ms"))
P99 = Spec("T3 p99", "added latency at 100 jobs/s, p99 (publish→result minus bare SDK call)", Target("≤", 6.0, " ms"))
TRACED = Spec(
    "T3 tracing",
    "latency p50 with tracing on (OTLP/HTTP, every job sampled) minus tracing off",
    Target("≤", 0.5, " ms"),
)
QUOTAS = Spec(
    "T3 quotas",
    "added latency at 100 jobs/s, p50, with WORKER_QUOTAS=on above quotas off in the same run",
    Target("≤", 1.0, " ms"),
)
SPECS = (P50, P99, TRACED, QUOTAS)
OPENAI_P50 = Spec(
    "T3 openai p50",
    "OpenAI: added latency at 100 jobs/s, p50 (publish→result minus bare openai SDK call)",
    Target("≤", 2.0, " ms"),
)
OPENAI_SPECS = (OPENAI_P50,)

_INBOX = "_INBOX.bench."
_CONCURRENCY = 64
"""The worker's default WORKER_CONCURRENCY; at 100 jobs/s of instant calls only a few are ever in flight."""


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


@dataclass(frozen=True, slots=True)
class _Latencies:
    total: list[float]
    """Seconds from publishing each job to its result arriving."""
    split: tuple[float, float, float]
    """Median milliseconds of: publish → pipeline start, pipeline (the provider call), pipeline end → arrival.

    Read from the result's own `startedAt` and `finishedAt`, which are only to the millisecond.
    """


async def _worker_latencies(
    provider: BenchProvider, fake_url: str, scale: Scale, env: dict[str, str] | None = None
) -> _Latencies:
    async with (
        fresh_server() as (server, nc, _),
        replicas(1, nats_url=server.url, provider_env=provider.env(fake_url), concurrency=_CONCURRENCY, env=env),
    ):
        published, arrivals, measured = await _paced(nc, scale, model=provider.model)
    return _Latencies([arrivals.times[rid] - published[rid] for rid in measured], _split(arrivals, published, measured))


async def _nats_floor(scale: Scale) -> list[float]:
    """The same paced jobs through `bench.bare_nats --worker-path`: the NATS round trips alone."""
    async with fresh_server() as (server, nc, js):
        await create_streams(js)
        argv = python_module("bench.bare_nats", "--batch", str(_CONCURRENCY), "--worker-path")
        child = await ChildProcess("bare-path", argv, child_env({"NATS_URL": server.url}), ready_marker=READY).start()
        try:
            published, arrivals, measured = await _paced(nc, scale)
        finally:
            await child.terminate()
    return [arrivals.times[rid] - published[rid] for rid in measured]


async def _paced(nc: Client, scale: Scale, *, model: str | None = None) -> tuple[dict[str, float], Arrivals, list[str]]:
    """Publish paced jobs, each with its own reply inbox, and note when each was published and its result came."""
    total = scale.t3_warmup + scale.t3_jobs
    arrivals = Arrivals(total)
    await arrivals.subscribe(nc, _INBOX + ">")
    loop = asyncio.get_running_loop()
    published: dict[str, float] = {}
    start = loop.time()
    for index in range(total):
        await asyncio.sleep(max(0.0, start + index / scale.t3_rate - loop.time()))
        body = job_body("t3", index, reply_to=_INBOX + run_id("t3", index), user=spread_user(index), model=model)
        published[run_id("t3", index)] = time.perf_counter()
        await nc.publish(JOB_SUBJECT, body)
    await arrivals.wait(60.0)
    return published, arrivals, [run_id("t3", index) for index in range(scale.t3_warmup, total)]


def _split(arrivals: Arrivals, published: dict[str, float], measured: list[str]) -> tuple[float, float, float]:
    to_wall = time.time() - time.perf_counter()
    into, pipeline, out = [], [], []
    for rid in measured:
        result = arrivals.results[rid]
        started = datetime.fromisoformat(result["startedAt"]).timestamp()
        finished = datetime.fromisoformat(result["finishedAt"]).timestamp()
        into.append(started - (published[rid] + to_wall))
        pipeline.append(finished - started)
        out.append(arrivals.times[rid] + to_wall - finished)
    return (statistics.median(into) * 1e3, statistics.median(pipeline) * 1e3, statistics.median(out) * 1e3)


@dataclass(frozen=True, slots=True)
class _Measured:
    bare: list[float]
    """Seconds of each bare SDK call."""
    worker: _Latencies
    fake_url: str

    def p50(self, spec: Spec, scale: Scale, provider: BenchProvider, floor_p50: float | None = None) -> Row:
        bare_p50, worker_p50 = _percentiles(self.bare)[0], _percentiles(self.worker.total)[0]
        into, pipeline, out = self.worker.split
        detail = (
            f"worker {worker_p50 * 1e3:.2f} ms vs bare {provider.label} SDK call {bare_p50 * 1e3:.2f} ms; "
            f"{_setup(scale)}; worker's median split: publish→pipeline start {into:.1f} ms, pipeline (provider "
            f"call) {pipeline:.1f} ms, pipeline end→result received {out:.1f} ms"
        )
        if floor_p50 is not None:
            detail += (
                "; the same jobs through a bare nats-py loop making only the worker's NATS round trips (fetch, "
                f"lookup, store, reply copy, no provider): {floor_p50 * 1e3:.2f} ms"
            )
        return spec.measured((worker_p50 - bare_p50) * 1e3, detail)


def _setup(scale: Scale) -> str:
    return f"{scale.t3_jobs:,} jobs at {scale.t3_rate:g}/s after {scale.t3_warmup} warm-up, zero-delay fake"


async def _measure(context: Context, provider: BenchProvider) -> _Measured:
    """Paced bare SDK calls, then the same pace of jobs through one replica, against the provider's fake."""
    scale = context.scale
    fake = await context.fake(provider, delay=0.0)
    args = ("--calls", str(scale.t3_jobs), "--warmup", str(scale.t3_warmup), "--rate", str(scale.t3_rate))
    bare = [float(latency) for latency in (await bare_sdk("paced", provider, fake.url, *args))["latencies"]]
    return _Measured(bare, await _worker_latencies(provider, fake.url, scale), fake.url)


async def run(context: Context) -> list[Row]:
    scale = context.scale
    measured = await _measure(context, ANTHROPIC)
    fake_url = measured.fake_url
    async with OtlpReceiver(keep=False) as otlp:
        traced = (await _worker_latencies(ANTHROPIC, fake_url, scale, traced_env(otlp))).total
    quota_p50, quota_p99 = _percentiles((await _worker_latencies(ANTHROPIC, fake_url, scale, QUOTAS_ON)).total)
    floor_p50, floor_p99 = _percentiles(await _nats_floor(scale))
    bare_p99 = _percentiles(measured.bare)[1]
    worker_p50, worker_p99 = _percentiles(measured.worker.total)
    traced_p50, traced_p99 = _percentiles(traced)
    setup = _setup(scale)
    return [
        measured.p50(P50, scale, ANTHROPIC, floor_p50),
        P99.measured(
            (worker_p99 - bare_p99) * 1e3,
            f"worker {worker_p99 * 1e3:.2f} ms vs bare SDK call {bare_p99 * 1e3:.2f} ms; {setup}; NATS round trips "
            f"alone {floor_p99 * 1e3:.2f} ms",
        ),
        TRACED.measured(
            (traced_p50 - worker_p50) * 1e3,
            f"tracing on p50 {traced_p50 * 1e3:.2f} ms vs off {worker_p50 * 1e3:.2f} ms (p99 {traced_p99 * 1e3:.2f} "
            f"vs {worker_p99 * 1e3:.2f} ms), both `agent-worker run` in the same run; {setup}; spans received "
            f"{otlp.received:,}",
        ),
        QUOTAS.measured(
            (quota_p50 - worker_p50) * 1e3,
            f"worker with quotas p50 {quota_p50 * 1e3:.2f} ms (p99 {quota_p99 * 1e3:.2f} ms) vs quotas off "
            f"{worker_p50 * 1e3:.2f} ms (p99 {worker_p99 * 1e3:.2f} ms): a reserve (read + compare-and-set) before the "
            f"provider and a settle after the store, 100 users; {setup}",
        ),
    ]


async def run_openai(context: Context) -> list[Row]:
    """The same pace with the OpenAI provider (jobs on GPT-5) against the bare openai SDK."""
    measured = await _measure(context, OPENAI)
    return [measured.p50(OPENAI_P50, context.scale, OPENAI)]
