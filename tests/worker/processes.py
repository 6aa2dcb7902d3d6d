"""`agent-worker run` as a real child process, for the signal and multi-replica tests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from worker.embedded import free_port

__all__ = ["WorkerProcess"]

_WORKER_PREFIXES = ("NATS_", "WORKER_", "ANTHROPIC_", "OLLAMA_")


class WorkerProcess:
    """`python -m worker run` with only the given settings (nothing inherited from the shell), logging to a file."""

    def __init__(self, name: str, settings: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.http_port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith(_WORKER_PREFIXES)}
        self.env = {
            **env,
            "PYTHONUNBUFFERED": "1",
            "WORKER_ID": name,
            "WORKER_LOG_FORMAT": "json",
            "WORKER_HTTP_PORT": str(self.http_port),
            **settings,
        }
        self.log_path = log_dir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, ready_within: float = 60.0) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "worker",
                "run",
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
                env=self.env,
            )
        await self.wait_ready(ready_within)
        return self

    async def wait_ready(self, within: float) -> None:
        """Polls /readyz: a child process has no event to await."""
        url = f"http://127.0.0.1:{self.http_port}/readyz"
        async with httpx.AsyncClient() as http:
            for _ in range(int(within / 0.1)):
                assert self.process is not None
                if self.process.returncode is not None:
                    raise AssertionError(f"{self.name} exited {self.process.returncode}: {self.log()}")
                try:
                    if (await http.get(url, timeout=1)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} not ready within {within} s: {self.log()}")

    def signal(self, signum: signal.Signals = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, within: float) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), within)

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""
