"""What every benchmark is handed: the scale, where profiles go, and the run's fake provider processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.providers import BenchProvider, ProviderName
from bench.scale import Scale
from testkit import FakeConfig
from testkit.process import FakeProcess

__all__ = ["Context"]


@dataclass
class Context:
    scale: Scale
    profile_dir: Path | None = None
    """When set, T1 and T2 also profile the worker there (an extra run each, not counted)."""
    _fakes: dict[ProviderName, FakeProcess] = field(default_factory=dict, repr=False)

    async def fake(self, provider: BenchProvider, *, delay: float) -> FakeProcess:
        """The provider's fake API in its own process (started on first use), answering after `delay` seconds.

        One process per provider serves the whole run, reconfigured per benchmark with its counters reset;
        being a separate process, its CPU is not the worker's, and baseline and worker pay for it alike.
        """
        fake = self._fakes.get(provider.name)
        if fake is None:
            fake = self._fakes[provider.name] = FakeProcess(provider.name, FakeConfig(delay=delay))
            await fake.start()
        else:
            await fake.configure(delay=delay)
        await fake.reset()
        return fake

    async def aclose(self) -> None:
        while self._fakes:
            _, fake = self._fakes.popitem()
            await fake.terminate()
