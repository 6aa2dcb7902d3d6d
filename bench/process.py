"""Processes under test: started, awaited until ready, sampled for memory, stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

__all__ = ["READY", "Child", "PeakRss", "cpu_seconds", "python_module", "raise_open_files_limit"]

READY = b"bench-ready"
"""What a benchmark's own harness process prints on stdout once it is consuming."""


def python_module(module: str, *args: str) -> list[str]:
    """The command line of `python -m module args...` in this interpreter."""
    return [sys.executable, "-m", module, *args]


def raise_open_files_limit(wanted: int = 8192) -> None:
    """Let this process and the ones it starts hold T2's thousand connections (a soft limit of 1024 is common)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


class Child:
    """A process whose stdout is read until a line holding the ready marker, then discarded; stderr goes to a file."""

    def __init__(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.http_port: int | None = None
        """Where a worker replica serves /metrics, when it does."""
        self.argv = list(argv)
        self.env = {**os.environ, **(env or {})}
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self._stderr = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self, *, ready_marker: bytes | None = READY, within: float = 60.0) -> Child:
        """Start it, and with a marker wait for the stdout line holding it (otherwise readiness is the caller's)."""
        with self._stderr.open("wb") as stderr:
            self._process = await asyncio.create_subprocess_exec(
                *self.argv,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
        stdout = self._process.stdout
        assert stdout is not None
        if ready_marker is not None:
            try:
                async with asyncio.timeout(within):
                    while (line := await stdout.readline()) and ready_marker not in line:
                        pass
            except TimeoutError:
                said = self.stderr_tail()
                await self.stop()
                raise RuntimeError(f"{self.name} was not ready within {within:.0f} s: {said}") from None
            if not line:
                said = self.stderr_tail()
                await self.stop()
                raise RuntimeError(f"{self.name} exited before it was ready: {said}")
        self._drain = asyncio.create_task(self._discard(stdout))
        return self

    @staticmethod
    async def _discard(stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass

    def stderr_tail(self, lines: int = 15) -> str:
        text = self._stderr.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    async def stop(self, *, grace: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; returns the exit code."""
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
        self._stderr.unlink(missing_ok=True)
        return process.returncode


class PeakRss:
    """Samples a process's resident memory every `interval` seconds while running; `peak` is the highest seen."""

    def __init__(self, pid: int, *, interval: float = 0.02) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> int:
        rss = int(self._process.memory_info().rss)
        self.peak = max(self.peak, rss)
        return rss

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(psutil.NoSuchProcess):
                self.sample()
            await asyncio.sleep(self._interval)

    def __enter__(self) -> PeakRss:
        self.sample()
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(psutil.NoSuchProcess):
            self.sample()
