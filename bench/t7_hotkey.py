"""T7: the quota hot key. One user's jobs, a thousand in flight across three replicas, all on one usage key.

Every job reserves before its provider call and settles after its result is stored, each a compare-and-set on
the same key from three processes. Measured: that the key ends exact (billed equals the sum of the stored
results' billedTokens, nothing left reserved), the throughput against the same run with quotas off, and how
many writes lost a compare-and-set race per change. The user is on an unlimited tier (counted, never refused),
so every job runs and the two runs do the same work.
"""

from __future__ import annotations

import asyncio
import math

import aiohttp
from nats.js import JetStreamContext

from bench.broker import Arrivals, fresh_server, publish_jobs
from bench.context import Context
from bench.jobs import QUOTAS_ON, job_body
from bench.providers import ANTHROPIC
from bench.replica import replicas
from bench.report import Row, Spec, Target
from bench.scale import Scale
from catalog.quota import MonthlyUsage
from testkit.process import WorkerProcess
from worker.contract import CONSUMER, JOBS_STREAM, RESULTS_SUBJECT_PREFIX, USAGE_BUCKET

__all__ = ["SPECS", "run"]

EXACT = Spec(
    "T7 exact",
    "quota hot key: bucket billed minus the results' billedTokens, plus tokens left reserved",
    Target("≤", 0.0, " tokens"),
)
RATE = Spec("T7 rate", "quota hot key: jobs/s with quotas over jobs/s without, same jobs", Target("≥", 0.8, "×"))
CONFLICTS = Spec("T7 conflicts", "quota hot key: compare-and-set conflicts per reserve or settle", Target("≤", 1.0, ""))
SPECS = (EXACT, RATE, CONFLICTS)

_USER = "bench-hot-user"
_REPLICAS = 3


async def _metric(child: WorkerProcess, name: str) -> float:
    """A counter or histogram count summed over its series, from a replica's /metrics."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{child.http_port}/metrics") as page:
        text = await page.text()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith((name + " ", name + "{")))


async def _usage(js: JetStreamContext) -> MonthlyUsage:
    kv = await js.key_value(USAGE_BUCKET)
    keys = [key for key in await kv.keys() if key.startswith(f"{_USER}.")]
    billed, reserved = 0, dict[str, int]()
    for key in keys:  # one, unless the run straddles midnight UTC at a month's end
        usage = MonthlyUsage.from_json((await kv.get(key)).value or b"")
        billed, reserved = billed + usage.billed, reserved | dict(usage.reserved)
    return MonthlyUsage(billed, reserved)


async def _run(fake_url: str, scale: Scale, *, quotas: bool) -> tuple[float, int, MonthlyUsage, float, float]:
    """jobs/s, the results' billed total, the user's usage, conflicts, and changes (reserves + settles)."""
    concurrency = math.ceil(scale.t7_in_flight / _REPLICAS)
    async with (
        fresh_server() as (server, nc, js),
        replicas(
            _REPLICAS,
            nats_url=server.url,
            provider_env=ANTHROPIC.env(fake_url),
            concurrency=concurrency,
            env=QUOTAS_ON if quotas else None,
        ) as children,
    ):
        arrivals = Arrivals(scale.t7_jobs)
        await arrivals.subscribe(nc, RESULTS_SUBJECT_PREFIX + ">")
        await publish_jobs(nc, [job_body("t7", i, user=_USER, tier="enterprise") for i in range(scale.t7_jobs)])
        await arrivals.wait(120 + 4 * scale.t7_jobs * scale.t7_delay / scale.t7_in_flight)
        # Settling follows the stored result, acking follows settling: idle once the consumer has nothing unacked.
        # The server announces no such moment, so its state is polled.
        async with asyncio.timeout(60):
            while (await js.consumer_info(JOBS_STREAM, CONSUMER)).num_ack_pending:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        usage = await _usage(js) if quotas else MonthlyUsage()
        conflicts = sum([await _metric(child, "agent_worker_quota_cas_conflicts_total") for child in children])
        changes = sum(
            [
                await _metric(child, name)
                for child in children
                for name in ("agent_worker_quota_reserve_seconds_count", "agent_worker_quota_settle_seconds_count")
            ]
        )
    # Steady state: from the end of the first wave of calls, as T4 times it.
    times = sorted(arrivals.times.values())
    first_wave = min(scale.t7_in_flight, len(times) - 2)
    rate = (len(times) - first_wave) / (times[-1] - times[first_wave - 1])
    billed = sum(int(result["billing"]["billedTokens"]) for result in arrivals.results.values())
    return rate, billed, usage, conflicts, changes


async def run(context: Context) -> list[Row]:
    scale = context.scale
    fake = await context.fake(ANTHROPIC, delay=scale.t7_delay)
    plain_rate, *_ = await _run(fake.url, scale, quotas=False)
    rate, billed, usage, conflicts, changes = await _run(fake.url, scale, quotas=True)
    setup = (
        f"{scale.t7_jobs:,} jobs of one user, {scale.t7_in_flight:,} in flight over {_REPLICAS} replicas, "
        f"provider delay {scale.t7_delay:g} s"
    )
    return [
        EXACT.measured(
            float(abs(usage.billed - billed) + usage.reserved_tokens),
            f"bucket billed {usage.billed:,}, results' billedTokens {billed:,}, reserved {len(usage.reserved)} runs "
            f"({usage.reserved_tokens:,} tokens); {setup}",
        ),
        RATE.measured(rate / plain_rate, f"{rate:,.0f} jobs/s with quotas vs {plain_rate:,.0f} without; {setup}"),
        CONFLICTS.measured(
            conflicts / max(changes, 1.0),
            f"{conflicts:,.0f} conflicts over {changes:,.0f} reserves and settles (each replica batches the changes "
            f"waiting on a key into one write); {setup}",
        ),
    ]
