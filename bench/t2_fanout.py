"""T2 and T5: thousands of slow calls in flight in one replica, against the bare SDK making the same calls."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.baseline import bare_sdk
from bench.broker import Arrivals, fresh_server, publish_jobs, warm_up
from bench.context import Context
from bench.jobs import QUOTAS_ON, RESULT_PREFIX, job_body, spread_user
from bench.profile import Sampler
from bench.replica import replicas
from bench.report import Row, Spec, Target
from bench.scale import Scale
from testkit.process import FakeProcess, PeakRss, cpu_seconds

__all__ = ["SPECS", "run"]

WALL = Spec("T2 wall", "slow provider, many in flight: wall time over the bare SDK's", Target("≤", 1.25, "×"))
PEAK = Spec("T2 rss", "slow provider, many in flight: peak RSS of the replica", Target("≤", 250.0, " MB"))
PER_JOB = Spec("T5", "memory per job in flight (T2 peak minus idle RSS)", Target("≤", 100.0, " KB"))
QUOTAS = Spec(
    "T2 quotas",
    "slow provider, many in flight, WORKER_QUOTAS=on (100 users): wall time over the bare SDK's",
    Target("≤", 1.3, "×"),
)
SPECS = (WALL, PEAK, PER_JOB, QUOTAS)

_MB = 1e6


@dataclass(frozen=True, slots=True)
class _Run:
    wall: float
    cpu: float
    idle_rss: int
    peak_rss: int
    in_flight: int
    """The most calls the fake saw in flight at once."""


async def _worker_run(fake: FakeProcess, scale: Scale, *, profile: Path | None = None, quotas: bool = False) -> _Run:
    await fake.reset()
    async with (
        fresh_server() as (server, nc, _),
        replicas(
            1,
            nats_url=server.url,
            anthropic_url=fake.url,
            concurrency=scale.t2_concurrency,
            env=QUOTAS_ON if quotas else None,
        ) as (replica,),
    ):
        await warm_up(nc)
        await asyncio.sleep(scale.settle)
        arrivals = Arrivals(scale.t2_jobs)
        await arrivals.subscribe(nc, RESULT_PREFIX + ">")
        sampler = await Sampler.start(replica.pid, profile) if profile else None
        with PeakRss(replica.pid, interval=0.02) as rss:
            idle = rss.sample()
            started, cpu = time.perf_counter(), cpu_seconds(replica.pid)
            # A hundred users: with quotas on, a hundred usage keys (the one-user hot key is T7's).
            await publish_jobs(nc, [job_body("t2", i, user=spread_user(i)) for i in range(scale.t2_jobs)])
            finished = await arrivals.wait(60 + 10 * scale.t2_jobs * scale.t2_delay / scale.t2_concurrency)
            cpu = cpu_seconds(replica.pid) - cpu
        peak = rss.peak
    if sampler is not None:
        await sampler.finish()
    in_flight = int((await fake.stats())["max_in_flight"])
    return _Run(finished - started, cpu, idle, peak, in_flight)


async def run(context: Context) -> list[Row]:
    scale, profile_dir = context.scale, context.profile_dir
    bare_runs: list[dict[str, float]] = []
    runs: list[_Run] = []
    quota_runs: list[_Run] = []
    fake = await context.fake_anthropic(delay=scale.t2_delay)
    for _ in range(scale.trials):
        args = ("--calls", str(scale.t2_jobs), "--warmup", "1", "--concurrency", str(scale.t2_concurrency))
        bare_runs.append(await bare_sdk("burst", fake.url, *args))
        runs.append(await _worker_run(fake, scale))
        quota_runs.append(await _worker_run(fake, scale, quotas=True))
    if profile_dir is not None:
        # Extra and not counted: sampling slows the process it samples.
        await _worker_run(fake, scale, profile=profile_dir / "t2-worker.folded")
    bare_wall = statistics.median(run["wall"] for run in bare_runs)
    bare_cpu = statistics.median(run["cpu"] for run in bare_runs) / scale.t2_jobs
    wall = statistics.median(run.wall for run in runs)
    cpu = statistics.median(run.cpu for run in runs) / scale.t2_jobs
    quota_wall = statistics.median(run.wall for run in quota_runs)
    quota_cpu = statistics.median(run.cpu for run in quota_runs) / scale.t2_jobs
    # Memory is judged on the worst trial: the peak is what a pod's limit must hold.
    worst = max(runs, key=lambda run: run.peak_rss)
    ideal = scale.t2_delay * -(-scale.t2_jobs // scale.t2_concurrency)
    setup = f"{scale.t2_jobs:,} jobs, provider delay {scale.t2_delay:g} s, WORKER_CONCURRENCY={scale.t2_concurrency}"
    return [
        WALL.measured(
            wall / bare_wall,
            f"worker {wall:.2f} s vs bare SDK {bare_wall:.2f} s (ideal {ideal:.1f} s); CPU per job: worker "
            f"{cpu * 1e3:.2f} ms vs bare SDK {bare_cpu * 1e3:.2f} ms; {setup}; median of {scale.trials}",
        ),
        PEAK.measured(
            worst.peak_rss / _MB, f"idle {worst.idle_rss / _MB:.0f} MB, peak {worst.peak_rss / _MB:.0f} MB; {setup}"
        ),
        PER_JOB.measured(
            (worst.peak_rss - worst.idle_rss) / worst.in_flight / 1e3,
            f"({worst.peak_rss / _MB:.0f} MB - {worst.idle_rss / _MB:.0f} MB) / {worst.in_flight:,} calls in flight "
            "(as the fake saw them)",
        ),
        QUOTAS.measured(
            quota_wall / bare_wall,
            f"worker with quotas {quota_wall:.2f} s vs bare SDK {bare_wall:.2f} s (quotas off {wall:.2f} s); CPU per "
            f"job {quota_cpu * 1e3:.2f} ms (quotas off {cpu * 1e3:.2f} ms); each job reserves and settles in the "
            f"usage bucket, 100 users; {setup}; median of {scale.trials}",
        ),
    ]
