"""T1: jobs/s of one replica with an instant provider, as a share of a bare nats-py loop's jobs/s.

Both consumers drain the same number of stored jobs from a fresh nats-server. Besides the rate, the CPU
each process and the nats-server spent per job is read: it explains the rate, and it varies much less
than the rate when the machine is busy.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.broker import check_completed, fresh_server, publish_jobs, wait_for_results
from bench.context import Context
from bench.jobs import job_body, run_id
from bench.process import READY
from bench.profile import Sampler
from bench.report import Row, Spec, Target
from bench.tracing import OtlpReceiver, traced_env
from testkit.process import ChildProcess, child_env, cpu_seconds, python_module
from testkit.streams import create_streams

__all__ = ["SPECS", "Drain", "drain", "run"]

THROUGHPUT = Spec("T1", "throughput, instant provider, share of a bare nats-py loop", Target("≥", 60.0, "%"))
TRACED = Spec(
    "T1 tracing",
    "throughput with tracing on (OTLP/HTTP, every job sampled), share of tracing off",
    Target("≥", 85.0, "%"),
)
SPECS = (THROUGHPUT, TRACED)


@dataclass(frozen=True, slots=True)
class Drain:
    rate: float
    """Jobs per second, from the consumer being ready to the last result stored."""
    cpu_us: float
    """CPU microseconds the consumer process spent per job."""
    server_cpu_us: float
    """CPU microseconds nats-server spent per job."""


async def drain(
    name: str, argv: Sequence[str], env: dict[str, str], jobs: int, *, profile: Path | None = None
) -> Drain:
    """Store `jobs` jobs, start the consumer, and time it from ready to the last result stored.

    With `profile`, py-spy samples the consumer from ready to exit and writes its stacks there.
    """
    async with fresh_server() as (server, nc, js):
        await create_streams(js)
        await publish_jobs(nc, [job_body(name, i) for i in range(jobs)])
        assert server.process is not None
        server_pid = server.process.pid
        child = await ChildProcess(name, argv, child_env({"NATS_URL": server.url, **env}), ready_marker=READY).start()
        sampler = await Sampler.start(child.pid, profile) if profile else None
        try:
            cpu, server_cpu = cpu_seconds(child.pid), cpu_seconds(server_pid)
            started = time.perf_counter()
            finished = await wait_for_results(js, jobs, within=120 + jobs / 100, alive=lambda: child.alive)
            cpu, server_cpu = cpu_seconds(child.pid) - cpu, cpu_seconds(server_pid) - server_cpu
            await check_completed(js, [run_id(name, 0), run_id(name, jobs - 1)])
        finally:
            await child.terminate()
            if sampler is not None:
                await sampler.finish()
    return Drain(jobs / (finished - started), cpu / jobs * 1e6, server_cpu / jobs * 1e6)


def _median(drains: list[Drain]) -> Drain:
    return Drain(
        statistics.median(d.rate for d in drains),
        statistics.median(d.cpu_us for d in drains),
        statistics.median(d.server_cpu_us for d in drains),
    )


async def run(context: Context) -> list[Row]:
    scale, profile_dir = context.scale, context.profile_dir
    bare_runs: list[Drain] = []
    worker_runs: list[Drain] = []
    traced_runs: list[Drain] = []
    exported: list[int] = []
    bare_argv = python_module("bench.bare_nats", "--batch", str(scale.t1_concurrency))
    worker_argv = python_module("bench.instant_worker")
    worker_env = {"WORKER_CONCURRENCY": str(scale.t1_concurrency), "WORKER_HTTP_PORT": "0"}
    for _ in range(scale.trials):
        bare_runs.append(await drain("bare", bare_argv, {}, scale.t1_jobs))
        worker_runs.append(await drain("worker", worker_argv, worker_env, scale.t1_jobs))
        # The same worker exporting every job's spans to a receiver in this process (counting, not decoding).
        async with OtlpReceiver(keep=False) as otlp:
            traced_runs.append(await drain("traced", worker_argv, {**worker_env, **traced_env(otlp)}, scale.t1_jobs))
        exported.append(otlp.received)
    if profile_dir is not None:
        # Profiled runs are extra and not counted: sampling slows the process it samples.
        await drain("bare", bare_argv, {}, scale.t1_jobs, profile=profile_dir / "t1-bare.folded")
        worker_argv = python_module("bench.instant_worker")
        await drain("worker", worker_argv, worker_env, scale.t1_jobs, profile=profile_dir / "t1-worker.folded")
    bare, worker, traced = _median(bare_runs), _median(worker_runs), _median(traced_runs)
    detail = (
        f"worker {worker.rate:,.0f} jobs/s vs bare loop {bare.rate:,.0f} jobs/s; CPU per job: worker "
        f"{worker.cpu_us:,.0f} µs + nats-server {worker.server_cpu_us:,.0f} µs, bare {bare.cpu_us:,.0f} µs + "
        f"{bare.server_cpu_us:,.0f} µs, so by CPU the worker does {100.0 * bare.cpu_us / worker.cpu_us:.0f}% of the "
        f"bare loop's jobs per core-second ({scale.t1_jobs:,} jobs, concurrency {scale.t1_concurrency}, "
        f"median of {scale.trials})"
    )
    traced_detail = (
        f"tracing on {traced.rate:,.0f} jobs/s vs off {worker.rate:,.0f} jobs/s in the same run; CPU per job "
        f"{traced.cpu_us:,.0f} µs vs {worker.cpu_us:,.0f} µs (+{traced.cpu_us - worker.cpu_us:,.0f} µs: a job span, "
        f"a call span, three events, their export); spans received {statistics.median(exported):,.0f} of "
        f"{2 * scale.t1_jobs:,} per run (median; the batch processor drops spans, never jobs, when its queue is full); "
        f"default OTEL_BSP_* settings, median of {scale.trials}"
    )
    return [
        THROUGHPUT.measured(100.0 * worker.rate / bare.rate, detail),
        TRACED.measured(100.0 * traced.rate / worker.rate, traced_detail),
    ]
