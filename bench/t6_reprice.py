"""T6: `agent-worker reprice` over the results stream: results read, gated and billed per second, and its memory.

A fresh nats-server's results stream is filled with stored results (a mix of tiers, models and statuses,
`bench.results`); the real command then reprices them under a catalog with one multiplier changed, as a
child process. The rate is the command's own (from connecting to the last result read; interpreter start-up
and imports excluded, they are reported beside it). Memory must not grow with the number of results:
the peak RSS of a run over the full count is compared with that of a run over a tenth of it.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.broker import fresh_server, wait_for_results
from bench.context import Context
from bench.report import Row, Spec, Target
from bench.results import publish_results
from testkit.process import PeakRss, python_module
from testkit.streams import create_streams

__all__ = ["SPECS", "run"]

RATE = Spec("T6 rate", "reprice: stored results read, gated and billed per second", Target("≥", 20_000.0, "/s"))
FLAT = Spec("T6 rss", "reprice: peak RSS over all results / over a tenth of them (flat)", Target("≤", 1.25, "×"))
SPECS = (RATE, FLAT)

_CATALOG = Path(__file__).resolve().parents[1] / "catalog" / "default.toml"
_READ = re.compile(rb"([\d,]+) results read from \S+ in ([\d.]+) s")


@dataclass(frozen=True, slots=True)
class Reprice:
    results: int
    read_secs: float
    wall_secs: float
    peak_mb: float

    @property
    def rate(self) -> float:
        return self.results / self.read_secs


def _changed_catalog(directory: Path) -> Path:
    """The default catalog with Sonnet at 3.5 instead of 3: every Sonnet run is billed again with ceilings."""
    text = _CATALOG.read_text()
    block = text.index('id = "claude-sonnet-4-6"')
    start = text.index('multiplier = "3"', block)
    path = directory / "catalog.toml"
    path.write_text(text[:start] + 'multiplier = "3.5"' + text[start + len('multiplier = "3"') :])
    return path


async def _reprice(count: int, catalog: Path) -> Reprice:
    async with fresh_server() as (server, nc, js):
        await create_streams(js)
        await publish_results(nc, "t6", count)
        await wait_for_results(js, count, within=120)
        started = asyncio.get_running_loop().time()
        process = await asyncio.create_subprocess_exec(
            *python_module("worker", "reprice", "--catalog", str(catalog), "--json"),
            env={**os.environ, "NATS_URL": server.url},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        with PeakRss(process.pid, interval=0.02) as rss:
            out, err = await process.communicate()
        wall = asyncio.get_running_loop().time() - started
    if process.returncode != 0:
        raise RuntimeError(f"reprice exited {process.returncode}: {err.decode(errors='replace')[-2000:]}")
    report = orjson.loads(out)
    read = _READ.search(err)
    if report["runs"] != count or read is None:
        raise RuntimeError(f"reprice read {report['runs']} of {count} results: {err.decode(errors='replace')}")
    return Reprice(count, float(read.group(2)), wall, rss.peak / 2**20)


async def run(context: Context) -> list[Row]:
    count = context.scale.t6_results
    with tempfile.TemporaryDirectory(prefix="bench-t6-") as directory:
        catalog = _changed_catalog(Path(directory))
        small = await _reprice(count // 10, catalog)
        full = await _reprice(count, catalog)
    return [
        RATE.measured(
            full.rate,
            f"{full.results:,} results in {full.read_secs:.2f} s read time ({full.wall_secs:.1f} s with the "
            f"interpreter's start-up and imports); catalog: Sonnet multiplier 3 → 3.5",
        ),
        FLAT.measured(
            full.peak_mb / small.peak_mb,
            f"peak RSS {full.peak_mb:.0f} MB over {full.results:,} results, {small.peak_mb:.0f} MB over "
            f"{small.results:,}",
        ),
    ]
