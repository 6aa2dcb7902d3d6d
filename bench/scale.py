"""How big each benchmark runs: the full suite, or `--quick`, which only proves that every row can be measured."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Scale"]


@dataclass(frozen=True, slots=True)
class Scale:
    trials: int
    """T1 and T2 alternate baseline and worker this many times and keep the median of each."""
    t1_jobs: int
    t1_concurrency: int
    """The worker's WORKER_CONCURRENCY and the bare loop's batch size."""
    t2_jobs: int
    t2_concurrency: int
    t2_delay: float
    settle: float
    """Seconds a ready replica is left alone before its idle RSS is read."""
    t3_jobs: int
    t3_warmup: int
    t3_rate: float
    t4_jobs: int
    t4_concurrency: int
    t4_delay: float
    t4_replicas: int = 3
    t6_results: int = 100_000
    """Stored results `agent-worker reprice` reads (and a tenth of them, for the memory comparison)."""
    t7_jobs: int = 3_000
    t7_in_flight: int = 1_000
    """The quota hot key: one user's jobs in flight at once, over three replicas."""
    t7_delay: float = 0.5


FULL = Scale(
    trials=5,
    t1_jobs=20_000,
    t1_concurrency=256,
    t2_jobs=2_000,
    t2_concurrency=1_000,
    t2_delay=1.0,
    settle=1.0,
    t3_jobs=1_000,
    t3_warmup=50,
    t3_rate=100.0,
    t4_jobs=600,
    t4_concurrency=10,
    t4_delay=0.2,
    t6_results=100_000,
)

QUICK = Scale(
    trials=1,
    t1_jobs=500,
    t1_concurrency=64,
    t2_jobs=200,
    t2_concurrency=100,
    t2_delay=0.2,
    settle=0.3,
    t3_jobs=50,
    t3_warmup=10,
    t3_rate=100.0,
    t4_jobs=60,
    t4_concurrency=5,
    t4_delay=0.2,
    t6_results=5_000,
    t7_jobs=240,
    t7_in_flight=120,
    t7_delay=0.2,
)
