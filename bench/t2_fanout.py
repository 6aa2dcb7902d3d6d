"""T2 and T5: thousands of slow calls in flight in one replica, against the bare SDK making the same calls.

T2 runs for Anthropic (with T5's memory rows and the quota row) and again for OpenAI, each against its own bare
SDK.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.baseline import bare_sdk
from bench.broker import Arrivals, fresh_server, publish_jobs, warm_up
from bench.context import Context
from bench.jobs import QUOTAS_ON, job_body, spread_user
from bench.profile import Sampler
from bench.providers import ANTHROPIC, OPENAI, BenchProvider
from bench.replica import replicas
from bench.report import Row, Spec, Target
from bench.scale import Scale
from testkit.process import FakeProcess, PeakRss, cpu_seconds
from worker.contract import RESULTS_SUBJECT_PREFIX

__all__ = ["OPENAI_SPECS", "SPECS", "run", "run_openai"]

WALL = Spec("T2 wall", "slow provider, many in flight: wall time over the bare SDK's", Target("≤", 1.25, "×"))
PEAK = Spec("T2 rss", "slow provider, many in flight: peak RSS of the replica", Target("≤", 250.0, " MB"))
PER_JOB = Spec("T5", "memory per job in flight (T2 peak minus idle RSS)", Target("≤", 100.0, " KB"))
QUOTAS = Spec(
    "T2 quotas",
    "slow provider, many in flight, WORKER_QUOTAS=on (100 users): wall time over the bare SDK's",
    Target("≤", 1.3, "×"),
)
SPECS = (WALL, PEAK, PER_JOB, QUOTAS)
OPENAI_WALL = Spec(
    "T2 openai", "slow OpenAI provider, many in flight: wall time over the bare openai SDK's", Target("≤", 1.25, "×")
)
OPENAI_SPECS = (OPENAI_WALL,)

_MB = 1e6


@dataclass(frozen=True, slots=True)
class _Run:
    wall: float
    cpu: float
    idle_rss: int
    peak_rss: int
    in_flight: int
    """The most calls the fake saw in flight at once."""


async def _worker_run(
    provider: BenchProvider, fake: FakeProcess, scale: Scale, *, profile: Path | None = None, quotas: bool = False
) -> _Run:
    await fake.reset()
    async with (
        fresh_server() as (server, nc, _),
        replicas(
            1,
            nats_url=server.url,
            provider_env=provider.env(fake.url),
            concurrency=scale.t2_concurrency,
            env=QUOTAS_ON if quotas else None,
        ) as (replica,),
    ):
        await warm_up(nc, model=provider.model)
        await asyncio.sleep(scale.settle)
        arrivals = Arrivals(scale.t2_jobs)
        await arrivals.subscribe(nc, RESULTS_SUBJECT_PREFIX + ">")
        sampler = await Sampler.start(replica.pid, profile) if profile else None
        with PeakRss(replica.pid, interval=0.02) as rss:
            idle = rss.sample()
            started, cpu = time.perf_counter(), cpu_seconds(replica.pid)
            # A hundred users: with quotas on, a hundred usage keys (the one-user hot key is T7's).
            bodies = [job_body("t2", i, user=spread_user(i), model=provider.model) for i in range(scale.t2_jobs)]
            await publish_jobs(nc, bodies)
            finished = await arrivals.wait(60 + 10 * scale.t2_jobs * scale.t2_delay / scale.t2_concurrency)
            cpu = cpu_seconds(replica.pid) - cpu
        peak = rss.peak
    if sampler is not None:
        await sampler.finish()
    in_flight = int((await fake.stats())["max_in_flight"])
    return _Run(finished - started, cpu, idle, peak, in_flight)


def _median_wall(runs: list[_Run]) -> float:
    return statistics.median(run.wall for run in runs)


def _cpu_per_job(runs: list[_Run], scale: Scale) -> float:
    return statistics.median(run.cpu for run in runs) / scale.t2_jobs


def _setup(scale: Scale) -> str:
    return f"{scale.t2_jobs:,} jobs, provider delay {scale.t2_delay:g} s, WORKER_CONCURRENCY={scale.t2_concurrency}"


@dataclass(frozen=True, slots=True)
class _Trials:
    provider: BenchProvider
    fake: FakeProcess
    bare: list[dict[str, float]] = field(default_factory=list)
    runs: list[_Run] = field(default_factory=list)
    quota_runs: list[_Run] = field(default_factory=list)

    @property
    def bare_wall(self) -> float:
        return statistics.median(run["wall"] for run in self.bare)

    def wall(self, spec: Spec, scale: Scale) -> Row:
        """The wall-time ratio row: medians of the worker's and the bare SDK's trials."""
        bare_cpu = statistics.median(run["cpu"] for run in self.bare) / scale.t2_jobs
        wall, cpu = _median_wall(self.runs), _cpu_per_job(self.runs, scale)
        ideal = scale.t2_delay * -(-scale.t2_jobs // scale.t2_concurrency)
        return spec.measured(
            wall / self.bare_wall,
            f"worker {wall:.2f} s vs bare {self.provider.label} SDK {self.bare_wall:.2f} s (ideal {ideal:.1f} s); "
            f"CPU per job: worker {cpu * 1e3:.2f} ms vs bare SDK {bare_cpu * 1e3:.2f} ms; {_setup(scale)}; "
            f"median of {scale.trials}",
        )


async def _trials(context: Context, provider: BenchProvider, *, quotas: bool = False) -> _Trials:
    """Bare SDK and worker (and, with `quotas`, the worker with quotas on), alternating, `scale.trials` times."""
    scale = context.scale
    trials = _Trials(provider, await context.fake(provider, delay=scale.t2_delay))
    for _ in range(scale.trials):
        args = ("--calls", str(scale.t2_jobs), "--warmup", "1", "--concurrency", str(scale.t2_concurrency))
        trials.bare.append(await bare_sdk("burst", provider, trials.fake.url, *args))
        trials.runs.append(await _worker_run(provider, trials.fake, scale))
        if quotas:
            trials.quota_runs.append(await _worker_run(provider, trials.fake, scale, quotas=True))
    return trials


async def run(context: Context) -> list[Row]:
    scale, profile_dir = context.scale, context.profile_dir
    trials = await _trials(context, ANTHROPIC, quotas=True)
    if profile_dir is not None:
        # Extra and not counted: sampling slows the process it samples.
        await _worker_run(ANTHROPIC, trials.fake, scale, profile=profile_dir / "t2-worker.folded")
    wall, cpu = _median_wall(trials.runs), _cpu_per_job(trials.runs, scale)
    quota_wall, quota_cpu = _median_wall(trials.quota_runs), _cpu_per_job(trials.quota_runs, scale)
    # Memory is judged on the worst trial: the peak is what a pod's limit must hold.
    worst = max(trials.runs, key=lambda run: run.peak_rss)
    setup = _setup(scale)
    return [
        trials.wall(WALL, scale),
        PEAK.measured(
            worst.peak_rss / _MB, f"idle {worst.idle_rss / _MB:.0f} MB, peak {worst.peak_rss / _MB:.0f} MB; {setup}"
        ),
        PER_JOB.measured(
            (worst.peak_rss - worst.idle_rss) / worst.in_flight / 1e3,
            f"({worst.peak_rss / _MB:.0f} MB - {worst.idle_rss / _MB:.0f} MB) / {worst.in_flight:,} calls in flight "
            "(as the fake saw them)",
        ),
        QUOTAS.measured(
            quota_wall / trials.bare_wall,
            f"worker with quotas {quota_wall:.2f} s vs bare SDK {trials.bare_wall:.2f} s (quotas off {wall:.2f} s); "
            f"CPU per job {quota_cpu * 1e3:.2f} ms (quotas off {cpu * 1e3:.2f} ms); each job reserves and settles in "
            f"the usage bucket, 100 users; {setup}; median of {scale.trials}",
        ),
    ]


async def run_openai(context: Context) -> list[Row]:
    """The same fan-out with the OpenAI provider (jobs on GPT-5) against the bare openai SDK."""
    trials = await _trials(context, OPENAI)
    return [trials.wall(OPENAI_WALL, context.scale)]
