"""T4: replicas share the consumer, so three of them, each held to its concurrency, do three times the work."""

from __future__ import annotations

from bench.broker import Arrivals, fresh_server, publish_jobs
from bench.context import Context
from bench.jobs import job_body
from bench.providers import ANTHROPIC
from bench.replica import replicas
from bench.report import Row, Spec, Target
from bench.scale import Scale
from worker.contract import RESULTS_SUBJECT_PREFIX

__all__ = ["SPECS", "run"]

SCALING = Spec("T4", "three replicas' jobs/s over one's, concurrency-bound", Target("≥", 2.7, "×"))
SPECS = (SCALING,)


async def _rate(fake_url: str, scale: Scale, count: int) -> float:
    async with (
        fresh_server() as (server, nc, _),
        replicas(count, nats_url=server.url, provider_env=ANTHROPIC.env(fake_url), concurrency=scale.t4_concurrency),
    ):
        arrivals = Arrivals(scale.t4_jobs)
        await arrivals.subscribe(nc, RESULTS_SUBJECT_PREFIX + ">")
        await publish_jobs(nc, [job_body(f"t4-{count}", i) for i in range(scale.t4_jobs)])
        await arrivals.wait(60 + 2 * scale.t4_jobs * scale.t4_delay / scale.t4_concurrency)
    # Steady state: timed from the end of the first wave (one full round of every replica's slots), so
    # each replica's first call, which pays one-time costs, weighs the same in both runs.
    times = sorted(arrivals.times.values())
    first_wave = count * scale.t4_concurrency
    return (len(times) - first_wave) / (times[-1] - times[first_wave - 1])


async def run(context: Context) -> list[Row]:
    scale = context.scale
    fake = await context.fake(ANTHROPIC, delay=scale.t4_delay)
    one = await _rate(fake.url, scale, 1)
    many = await _rate(fake.url, scale, scale.t4_replicas)
    ceiling = scale.t4_concurrency / scale.t4_delay
    return [
        SCALING.measured(
            many / one,
            f"{scale.t4_replicas} replicas {many:.1f} jobs/s vs 1 replica {one:.1f} jobs/s "
            f"(ceiling {ceiling:.0f} per replica: WORKER_CONCURRENCY={scale.t4_concurrency}, "
            f"delay {scale.t4_delay:g} s; {scale.t4_jobs} jobs)",
        )
    ]
