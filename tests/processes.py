"""Child processes for the tests: `agent-worker run` replicas and other `python -m` servers, each with its own log.

Every child is started from this interpreter, so a test runs the installed code exactly as `agent-worker run`
would run it, and can signal or kill it at any moment. They are `subprocess.Popen` children rather than asyncio
ones: no event loop owns them, so a synchronous fixture's teardown can stop them too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

import httpx
import psutil

from worker.embedded import free_port

__all__ = ["ChildProcess", "RssSampler", "WorkerProcess", "child_env"]

# Every worker setting has one of these prefixes: a child gets the ones its test sets, never the shell's
# (OTEL_: a shell's trace endpoint would turn on tracing in every worker a test starts).
_WORKER_PREFIXES = ("NATS_", "WORKER_", "ANTHROPIC_", "OPENAI_", "OLLAMA_", "OTEL_")


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


class ChildProcess:
    """A subprocess with stdout and stderr in one log file, ready once `ready_url` answers.

    `kill()`, `stop()` and `close()` may be called any number of times, whether it was started or not.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        *,
        ready_url: str,
        ready_needs_ok: bool,
        ready_within: float,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.rss: RssSampler | None = None
        self._ready_url = ready_url
        self._ready_needs_ok = ready_needs_ok
        self._ready_within = ready_within

    def spawn(self) -> None:
        """Start it without waiting (a fleet starts every child first, then waits for them together)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
            )
        self.rss = RssSampler(self.process.pid)

    async def start(self, within: float | None = None) -> Self:
        """Start it and wait until it is ready (see `wait_ready`)."""
        self.spawn()
        await self.wait_ready(within)
        return self

    async def wait_ready(self, within: float | None = None) -> None:
        """Until `ready_url` answers (with 200 when `ready_needs_ok`); fails fast if the process dies meanwhile.

        Polled: a child process has no event to await.
        """
        within = self._ready_within if within is None else within
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_tail()}")
                try:
                    response = await client.get(self._ready_url)
                    if response.status_code == 200 or not self._ready_needs_ok:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.name} not answering {self._ready_url} within {within}s:\n{self.log_tail()}")

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

    def signal(self, signum: signal.Signals = signal.SIGTERM) -> None:
        assert self.process is not None, f"{self.name} was never started"
        self.process.send_signal(signum)

    async def wait(self, within: float) -> int:
        """The exit code; raises TimeoutError when the process outlives `within` seconds."""
        return await asyncio.wait_for(asyncio.to_thread(self._reap, None), within)

    def kill(self) -> None:
        """SIGKILL, and wait for it: no chance to finish, ack or nak anything."""
        if self.alive:
            self.signal(signal.SIGKILL)
        if self.process is not None:
            self._reap(10.0)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it is still running after `grace` seconds."""
        if self.alive:
            self.signal(signal.SIGTERM)
            try:
                self._reap(grace)
                return
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    async def close(self) -> None:
        """An async teardown's end for it: killed if the test left it running (that test has failed anyway)."""
        await asyncio.to_thread(self.kill)

    def _reap(self, timeout: float | None) -> int:
        assert self.process is not None, f"{self.name} was never started"
        code = self.process.wait(timeout)
        if self.rss is not None:
            self.rss.stop()
        return code

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class WorkerProcess(ChildProcess):
    """One `agent-worker run` replica with JSON logs, configured only through its environment (contract 1, 7, 8).

    Its HTTP port is a free one rather than 0, so `/readyz` tells when it is connected and bound to the consumer.
    """

    def __init__(self, name: str, settings: Mapping[str, str], log_dir: Path) -> None:
        self.http_port = free_port()
        env = child_env(
            {"WORKER_ID": name, "WORKER_LOG_FORMAT": "json", "WORKER_HTTP_PORT": str(self.http_port), **settings}
        )
        super().__init__(
            name,
            [sys.executable, "-m", "worker", "run"],
            env,
            log_dir,
            ready_url=f"http://127.0.0.1:{self.http_port}/readyz",
            ready_needs_ok=True,
            ready_within=90.0,
        )

    async def metrics_text(self) -> str:
        async with httpx.AsyncClient(timeout=2.0) as client:
            response = await client.get(f"http://127.0.0.1:{self.http_port}/metrics")
            return response.text
