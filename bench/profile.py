"""`--profile DIR`: py-spy attached to the process under test, and a table of where its CPU went.

py-spy samples another process without changing it, so the worker is profiled exactly as it runs in the
benchmark (attached once it is ready, so start-up imports are left out). The raw folded stacks are kept
for flame graphs; the summary lists each function's share of the samples, inclusive and self. Only
samples holding the GIL count: the Python work, which is what a single-threaded asyncio service spends.
"""

from __future__ import annotations

import asyncio
import shutil
import sysconfig
from collections import Counter
from pathlib import Path

__all__ = ["Sampler", "summarize"]


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sysconfig.get_path("scripts")) / "py-spy")
    if not Path(found).is_file():
        raise RuntimeError("--profile needs py-spy: pip install -e '.[dev]'")
    return found


class Sampler:
    """py-spy recording one process from `start` until that process exits; `finish` then writes the summary."""

    def __init__(self, spy: asyncio.subprocess.Process, folded: Path) -> None:
        self._spy = spy
        self.folded = folded

    @classmethod
    async def start(cls, pid: int, folded: Path) -> Sampler:
        folded.parent.mkdir(parents=True, exist_ok=True)
        spy = await asyncio.create_subprocess_exec(
            _py_spy(),
            # --gil: only samples holding the GIL, i.e. Python at work, not threads waiting in a pool.
            *("record", "--pid", str(pid), "--gil", "--format", "raw", "--nolineno", "--rate", "200"),
            *("--output", str(folded)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return cls(spy, folded)

    async def finish(self) -> None:
        """Call once the sampled process has exited: py-spy writes its stacks then."""
        await asyncio.wait_for(self._spy.wait(), 60.0)
        _write_summary(self.folded)


def _write_summary(folded: Path) -> None:
    if folded.exists():
        folded.with_suffix(".top.txt").write_text(summarize(folded) + "\n")


def summarize(folded: Path, *, rows: int = 45) -> str:
    """Per function (`name (file)`), the share of samples with it on the stack, and at the top of it."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if frame]
        if not frames:
            continue
        total += count
        inclusive.update(dict.fromkeys(set(frames), count))
        own[frames[-1]] += count
    if not total:
        return "no samples\n"

    def table(counter: Counter[str]) -> list[str]:
        return [f"{100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(rows)]

    return "\n".join(
        [f"{total} samples", "", "inclusive (on the stack):", *table(inclusive), "", "self (at the top):", *table(own)]
    )
