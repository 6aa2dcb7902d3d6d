"""T1: jobs/s of one replica with an instant provider, as a share of a bare nats-py loop's jobs/s."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from bench.broker import create_streams, fresh_server, publish_jobs, wait_for_results
from bench.jobs import job_body
from bench.process import Child, python_module
from bench.report import Row, Spec, Target
from bench.scale import Scale

__all__ = ["SPECS", "measure_rate", "run"]

THROUGHPUT = Spec("T1", "throughput, instant provider, share of a bare nats-py loop", Target("≥", 60.0, "%"))
SPECS = (THROUGHPUT,)


async def measure_rate(name: str, argv: Sequence[str], env: dict[str, str], jobs: int) -> float:
    """Store `jobs` jobs, start the consumer, and time it from ready to the last result stored."""
    async with fresh_server() as (server, nc, js):
        await create_streams(js)
        await publish_jobs(nc, [job_body(name, i) for i in range(jobs)])
        child = await Child(name, argv, env={"NATS_URL": server.url, **env}).start()
        try:
            started = time.perf_counter()
            finished = await wait_for_results(js, jobs, within=120 + jobs / 100, alive=child.alive)
        finally:
            await child.stop()
    return jobs / (finished - started)


async def run(scale: Scale) -> list[Row]:
    bare: list[float] = []
    worker: list[float] = []
    bare_argv = python_module("bench.bare_nats", "--batch", str(scale.t1_concurrency))
    worker_env = {"WORKER_CONCURRENCY": str(scale.t1_concurrency), "WORKER_HTTP_PORT": "0"}
    for _ in range(scale.trials):
        bare.append(await measure_rate("bare", bare_argv, {}, scale.t1_jobs))
        worker.append(await measure_rate("worker", python_module("bench.instant_worker"), worker_env, scale.t1_jobs))
    bare_rate, worker_rate = statistics.median(bare), statistics.median(worker)
    detail = (
        f"worker {worker_rate:,.0f} jobs/s vs bare loop {bare_rate:,.0f} jobs/s "
        f"({scale.t1_jobs:,} jobs, concurrency {scale.t1_concurrency}, median of {scale.trials})"
    )
    return [THROUGHPUT.measured(100.0 * worker_rate / bare_rate, detail)]
