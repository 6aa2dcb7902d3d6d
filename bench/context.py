"""What every benchmark is handed: the scale, where profiles go, and the run's one fake Anthropic process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.scale import Scale
from testkit import FakeConfig
from testkit.process import FakeProcess

__all__ = ["Context"]


@dataclass
class Context:
    scale: Scale
    profile_dir: Path | None = None
    """When set, T1 and T2 also profile the worker there (an extra run each, not counted)."""
    _fake: FakeProcess | None = field(default=None, repr=False)

    async def fake_anthropic(self, *, delay: float) -> FakeProcess:
        """The fake Messages API in its own process (started on first use), answering after `delay` seconds.

        One process serves the whole run, reconfigured per benchmark with its counters reset; being a
        separate process, its CPU is not the worker's, and baseline and worker pay for it alike.
        """
        if self._fake is None:
            self._fake = FakeProcess("anthropic", FakeConfig(delay=delay))
            await self._fake.start()
        else:
            await self._fake.configure(delay=delay)
        await self._fake.reset()
        return self._fake

    async def aclose(self) -> None:
        if self._fake is not None:
            await self._fake.terminate()
            self._fake = None
