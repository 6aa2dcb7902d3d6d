"""The benchmarks in table order; one that fails shows its rows as errors and the others still run."""

from __future__ import annotations

import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import t1_throughput, t2_fanout, t3_latency, t4_scaling, t6_reprice, t7_hotkey
from bench.context import Context
from bench.report import Row, Spec
from bench.scale import Scale

__all__ = ["BENCHMARKS", "Benchmark", "run_suite"]


@dataclass(frozen=True, slots=True)
class Benchmark:
    specs: Sequence[Spec]
    run: Callable[[Context], Awaitable[list[Row]]]

    @property
    def keys(self) -> list[str]:
        return [spec.key.split()[0] for spec in self.specs]


BENCHMARKS = (
    Benchmark(t1_throughput.SPECS, t1_throughput.run),
    Benchmark(t2_fanout.SPECS, t2_fanout.run),
    Benchmark(t2_fanout.OPENAI_SPECS, t2_fanout.run_openai),
    Benchmark(t3_latency.SPECS, t3_latency.run),
    Benchmark(t3_latency.OPENAI_SPECS, t3_latency.run_openai),
    Benchmark(t4_scaling.SPECS, t4_scaling.run),
    Benchmark(t6_reprice.SPECS, t6_reprice.run),
    Benchmark(t7_hotkey.SPECS, t7_hotkey.run),
)


async def run_suite(
    scale: Scale, only: set[str] | None = None, *, profile_dir: Path | None = None, progress: Callable[[str], None]
) -> list[Row]:
    rows: list[Row] = []
    context = Context(scale, profile_dir)
    try:
        rows += await _run_each(context, only, progress)
    finally:
        await context.aclose()
    return rows


async def _run_each(context: Context, only: set[str] | None, progress: Callable[[str], None]) -> list[Row]:
    rows: list[Row] = []
    for benchmark in BENCHMARKS:
        if only is not None and not only.intersection(benchmark.keys):
            continue
        names = ", ".join(dict.fromkeys(benchmark.keys))
        progress(f"running {names} ...")
        started = time.perf_counter()
        try:
            rows += await benchmark.run(context)
        except Exception as exc:
            progress(traceback.format_exc())
            rows += [spec.failed(f"{type(exc).__name__}: {exc}") for spec in benchmark.specs]
        progress(f"{names} took {time.perf_counter() - started:.1f} s")
    return rows
