"""A fake provider in its own process, steered over HTTP: for benchmarks and fault runs that must not share a loop.

async with FakeProcess("anthropic", FakeConfig(delay=1.0)) as fake:
    ... fake.url ...
    await fake.configure(fault_rate=0.2)
    print(await fake.stats())
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from types import TracebackType
from typing import Any, Literal, Self

import httpx
import orjson

from worker.testing._fake import FakeConfig, FakeServer, Step
from worker.testing.anthropic_server import FakeAnthropic
from worker.testing.ollama_server import FakeOllama
from worker.testing.openai_server import FakeOpenAI

__all__ = ["FakeProcess"]

FakeKind = Literal["anthropic", "ollama", "openai"]
_SERVERS: dict[FakeKind, type[FakeServer]] = {"anthropic": FakeAnthropic, "ollama": FakeOllama, "openai": FakeOpenAI}


class FakeProcess:
    """`python -m worker.testing.fake_<kind>` as a child process; `.url` once started, stopped on exit."""

    def __init__(
        self,
        kind: FakeKind,
        config: FakeConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        script: tuple[Step, ...] = (),
        start_timeout: float = 15.0,
    ) -> None:
        self.kind = kind
        self._argv = [
            sys.executable,
            "-m",
            _SERVERS[kind].cli_module,
            "--host",
            host,
            "--port",
            str(port),
            "--config",
            orjson.dumps((config or FakeConfig()).to_json()).decode(),
        ]
        if script:
            self._argv += ["--script", orjson.dumps([step.to_json() for step in script]).decode()]
        self._start_timeout = start_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._control: httpx.AsyncClient | None = None
        self.url = ""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(*self._argv, stdout=asyncio.subprocess.PIPE)
        assert self._process.stdout is not None
        try:
            async with asyncio.timeout(self._start_timeout):
                line = await self._process.stdout.readline()
        except TimeoutError:
            await self.stop()
            raise
        if not line.startswith(b"http"):
            await self.stop()
            raise RuntimeError(f"fake {self.kind} did not start (said {line!r})")
        self.url = line.decode().strip()
        self._control = httpx.AsyncClient(base_url=self.url, timeout=10.0)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not gone within five seconds."""
        if self._control is not None:
            await self._control.aclose()
            self._control = None
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(5.0):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stats(self) -> dict[str, Any]:
        """The fake's counters (`calls`, `replies`, `faults`, `drops`, `cancelled`, `in_flight`, ...)."""
        return await self._call("GET", "/_fake/stats")  # type: ignore[no-any-return]

    async def requests(self) -> list[dict[str, Any]]:
        return await self._call("GET", "/_fake/requests")  # type: ignore[no-any-return]

    async def configure(self, **changes: Any) -> dict[str, Any]:
        """Change config fields (see `FakeConfig`) while it runs; returns the whole config."""
        return await self._call("POST", "/_fake/config", changes)  # type: ignore[no-any-return]

    async def script(self, *steps: Step) -> None:
        await self._call("POST", "/_fake/script", [step.to_json() for step in steps])

    async def reset(self) -> None:
        await self._call("POST", "/_fake/reset", {})

    async def _call(self, method: str, path: str, payload: Any = None) -> Any:
        if self._control is None:
            raise RuntimeError("the fake is not running")
        content = None if payload is None else orjson.dumps(payload)
        response = await self._control.request(method, path, content=content)
        response.raise_for_status()
        return orjson.loads(response.content)
