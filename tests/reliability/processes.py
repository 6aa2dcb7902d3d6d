"""Real child processes for the fault suite: worker replicas and fake provider servers, each with its own log.

Every child is started from this interpreter (`python -m ...`), so the suite tests the installed code
exactly as `agent-worker run` would run it, and can be killed with any signal at any moment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import psutil

from worker.embedded import free_port

__all__ = ["Child", "FakeProviderProcess", "RssSampler", "WorkerProcess", "child_env"]

# Variables a worker reads; the suite sets the ones it needs and never inherits the others from the shell.
_WORKER_PREFIXES = ("NATS_", "WORKER_", "ANTHROPIC_", "OLLAMA_")


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any worker setting, plus `overrides`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(_WORKER_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


class RssSampler:
    """Samples a process's resident set size in a thread; `peak` is the highest seen, in bytes."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.peak = 0
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Child:
    """A subprocess with stdout and stderr in one log file; `stop()` is safe to call any number of times."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.rss: RssSampler | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
            )
        self.rss = RssSampler(self.process.pid)

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def peak_rss_mb(self) -> float:
        return 0.0 if self.rss is None else self.rss.peak / 2**20

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL: no chance to finish, ack or nak anything."""
        self.signal(signal.SIGKILL)
        self.wait_exit_blocking(10.0)

    async def wait_answering(self, url: str, *, within: float, need_ok: bool) -> None:
        """Until `url` answers (with 200 when `need_ok`); fails fast if the process dies meanwhile."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_tail()}")
                try:
                    response = await client.get(url)
                    if response.status_code == 200 or not need_ok:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.name} not answering {url} within {within}s:\n{self.log_tail()}")

    async def wait_exit(self, within: float) -> int:
        """The exit code; raises TimeoutError when the process outlives `within` seconds."""
        assert self.process is not None
        process = self.process
        return await asyncio.wait_for(asyncio.to_thread(process.wait), within)

    def wait_exit_blocking(self, timeout: float) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        if self.rss is not None:
            self.rss.stop()
        return code

    def terminate(self) -> None:
        """SIGTERM, without waiting (a fleet signals every child first, then waits for them together)."""
        if self.alive:
            assert self.process is not None
            self.process.terminate()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.rss is not None:
            self.rss.stop()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class WorkerProcess(Child):
    """One `agent-worker run` replica, configured only through its environment (contract sections 1, 7, 8).

    Its HTTP port is a free one rather than 0 so `/readyz` tells the suite when it is bound to the consumer.
    """

    def __init__(self, name: str, settings: Mapping[str, str], log_dir: Path) -> None:
        self.http_port = free_port()
        env = child_env({"WORKER_ID": name, "WORKER_HTTP_PORT": str(self.http_port), **settings})
        super().__init__(name, [sys.executable, "-m", "worker", "run"], env, log_dir)

    async def wait_ready(self, within: float = 90.0) -> None:
        """Until `/readyz` answers 200 (connected and consumer bound); fails fast if the process dies."""
        await self.wait_answering(f"http://127.0.0.1:{self.http_port}/readyz", within=within, need_ok=True)

    async def metrics_text(self) -> str:
        async with httpx.AsyncClient(timeout=2.0) as client:
            response = await client.get(f"http://127.0.0.1:{self.http_port}/metrics")
            return response.text


class FakeProviderProcess(Child):
    """A fake provider server from `worker.testing`, on a free loopback port; it prints its URL when ready."""

    def __init__(self, name: str, module: str, options: list[str], log_dir: Path) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", module, "--port", str(self.port), *options]
        super().__init__(name, args, child_env({}), log_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, within: float = 15.0) -> None:
        await self.wait_answering(f"{self.url}/_fake/stats", within=within, need_ok=False)

    async def stats(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(f"{self.url}/_fake/stats")
            response.raise_for_status()
            stats: dict[str, Any] = response.json()
            return stats

    async def configure(self, **changes: Any) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.post(f"{self.url}/_fake/config", json=changes)
            response.raise_for_status()
