"""An in-process provider whose calls the test controls: what it answers, raises, and when it returns."""

from __future__ import annotations

import asyncio

from catalog import Usage
from worker.providers.base import ProviderError, ProviderReply, ProviderRequest

__all__ = ["FakeProvider"]


class FakeProvider:
    """Answers `text` with `usage`; raises `errors` first, one per call; waits for `gate` when it is set.

    `calls` records every request; `wait_for_calls(n)` returns once n calls have started.
    """

    def __init__(
        self,
        name: str = "anthropic",
        *,
        text: str = "Done.",
        usage: Usage | None = None,
        errors: list[ProviderError] | None = None,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.name = name
        self.text = text
        self.usage = usage or Usage(input_tokens=812, output_tokens=240)
        self.errors = list(errors or [])
        self.gate = gate
        self.calls: list[ProviderRequest] = []
        self.closed = False
        self._call_started = asyncio.Event()

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        self.calls.append(request)
        self._call_started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)
        return ProviderReply(text=self.text, stop_reason="end_turn", usage=self.usage)

    async def aclose(self) -> None:
        self.closed = True

    async def wait_for_calls(self, count: int, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while len(self.calls) < count:
                self._call_started.clear()
                await self._call_started.wait()
