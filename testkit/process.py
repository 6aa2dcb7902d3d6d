"""Child processes for tests and benchmarks: one wrapper, started, awaited until ready, sampled, signalled, stopped.

Every child is a `subprocess.Popen` started from this interpreter (`python -m ...`), so it runs the installed code
exactly as production would, and can be signalled or killed at any moment. No event loop owns it, so a synchronous
fixture's teardown can stop it too. Its environment carries none of the shell's worker settings, and has this
checkout on `PYTHONPATH`, so `python -m testkit...` and `python -m bench...` work from any working directory.

- `ChildProcess`: ready once a URL answers, or once a marker line appears on its stdout (benchmark harnesses).
- `WorkerProcess`: one `agent-worker run` replica, ready once its `/readyz` says 200.
- `FakeProcess`: a fake provider from `testkit` in its own process, steered over `/_fake/*`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self

import httpx
import orjson
import psutil

from testkit._fake import FakeConfig, Step
from worker.embedded import free_port

__all__ = [
    "REPO_ROOT",
    "ChildProcess",
    "Completed",
    "FakeKind",
    "FakeProcess",
    "PeakRss",
    "WorkerProcess",
    "child_env",
    "cpu_seconds",
    "python_module",
    "run_command",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout holding `testkit/`, `tests/` and `bench/` (none of them is installed)."""

# Every worker setting has one of these prefixes: a child gets the ones its caller sets, never the shell's
# (OTEL_: a shell's trace endpoint would turn on tracing in every worker a test starts).
_WORKER_PREFIXES = ("NATS_", "WORKER_", "ANTHROPIC_", "OPENAI_", "OLLAMA_", "OTEL_")


def python_module(module: str, *args: str) -> list[str]:
    """The command line of `python -m module args...` in this interpreter."""
    return [sys.executable, "-m", module, *args]


@dataclass(frozen=True, slots=True)
class Completed:
    """How an `agent-worker` command run by `run_command` ended."""

    code: int
    out: str
    err: str


async def run_command(*args: str, env: Mapping[str, str], within: float = 60.0) -> Completed:
    """`agent-worker ARGS` (as `python -m worker`) in its own process to its end, as ops run it; `env` holds the
    settings it gets (`child_env`: none of the shell's)."""
    process = await asyncio.create_subprocess_exec(
        *python_module("worker", *args),
        env=child_env(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    return Completed(process.returncode, out.decode(), err.decode())


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any worker setting, with this checkout importable, plus `overrides`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(_WORKER_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(overrides)
    return env


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


class PeakRss:
    """Samples a process's resident set size in a thread from construction until `stop()`; `peak` in bytes.

    Also a context manager: `with PeakRss(pid) as rss: ...` samples during the block.
    """

    def __init__(self, pid: int, *, interval: float = 0.1) -> None:
        self.peak = 0
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> int:
        """The resident set size now, in bytes (0 once the process is gone); counted into `peak`."""
        try:
            rss = int(self._process.memory_info().rss)
        except psutil.Error:
            return 0
        self.peak = max(self.peak, rss)
        return rss

    def _run(self) -> None:
        while not self._stop.wait(self._interval) and self.sample():
            pass

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self.sample()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ChildProcess:
    """A subprocess with its output in one log file, ready once `ready_url` answers or `ready_marker` is printed.

    With `ready_marker`, stdout is read until the line holding it and discarded after (stderr goes to the log);
    otherwise stdout and stderr both go to the log. Without `log_dir` the log is a temporary file, removed on stop.
    `kill()`, `stop()` and `close()` may be called any number of times, whether it was started or not.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path | None = None,
        *,
        ready_url: str | None = None,
        ready_needs_ok: bool = True,
        ready_marker: bytes | None = None,
        ready_within: float = 60.0,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.env = dict(env)
        if log_dir is None:
            handle, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
            os.close(handle)
            self.log_path = Path(path)
        else:
            self.log_path = log_dir / f"{name}.log"
        self._temporary_log = log_dir is None
        self.process: subprocess.Popen[bytes] | None = None
        self.rss: PeakRss | None = None
        self._ready_url = ready_url
        self._ready_needs_ok = ready_needs_ok
        self._ready_marker = ready_marker
        self._marked = threading.Event()
        self._ready_within = ready_within

    def spawn(self) -> None:
        """Start it without waiting (a fleet starts every child first, then waits for them together)."""
        marker = self._ready_marker
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args,
                stdout=log if marker is None else subprocess.PIPE,
                stderr=subprocess.STDOUT if marker is None else log,
                stdin=subprocess.DEVNULL,
                env=self.env,
            )
        if marker is not None:
            assert self.process.stdout is not None
            threading.Thread(target=self._read_stdout, args=(self.process.stdout, marker), daemon=True).start()
        self.rss = PeakRss(self.process.pid)

    def _read_stdout(self, stdout: IO[bytes], marker: bytes) -> None:
        """Until the marker line, then discarded (a full pipe would stall the child)."""
        for line in stdout:
            if marker in line:
                self._marked.set()
                break
        while stdout.read(65536):
            pass

    async def start(self, within: float | None = None) -> Self:
        """Start it and wait until it is ready (see `wait_ready`)."""
        self.spawn()
        try:
            await self.wait_ready(within)
        except BaseException:
            await self.close()
            raise
        return self

    async def wait_ready(self, within: float | None = None) -> None:
        """Until the marker was printed or `ready_url` answers (with 200 when `ready_needs_ok`); fails fast if the
        process dies meanwhile.

        Polled: a child process has no event to await (the marker wait wakes as soon as the line is read).
        """
        within = self._ready_within if within is None else within
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self._ready_marker is not None:
                    if await asyncio.to_thread(self._marked.wait, 0.05):
                        return
                elif self._ready_url is not None:
                    try:
                        response = await client.get(self._ready_url)
                        if response.status_code == 200 or not self._ready_needs_ok:
                            return
                    except httpx.HTTPError:
                        pass
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_tail()}")
                if self._ready_marker is None:
                    await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready within {within}s:\n{self.log_tail()}")

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

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it is still running after `grace` seconds; the exit code (None if never started)."""
        if self.alive:
            self.signal(signal.SIGTERM)
            try:
                self._reap(grace)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            self.kill()
        if self._temporary_log:
            self.log_path.unlink(missing_ok=True)
        return None if self.process is None else self.process.returncode

    async def terminate(self, grace: float = 30.0) -> int | None:
        """`stop(grace)` from async code, without blocking the loop."""
        return await asyncio.to_thread(self.stop, grace)

    async def close(self) -> None:
        """An async teardown's end for it: killed if the test left it running (that test has failed anyway)."""
        await asyncio.to_thread(self.kill)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.terminate()

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
    """One `agent-worker run` replica with JSON logs, configured only by its environment
    (docs/contract.md §1, §7, §8).

    Its HTTP port is a free one rather than 0, so `/readyz` tells when it is connected and bound to the consumer.
    """

    def __init__(
        self, name: str, settings: Mapping[str, str], log_dir: Path | None = None, *, ready_within: float = 90.0
    ) -> None:
        self.http_port = free_port()
        env = child_env(
            {"WORKER_ID": name, "WORKER_LOG_FORMAT": "json", "WORKER_HTTP_PORT": str(self.http_port), **settings}
        )
        super().__init__(
            name,
            python_module("worker", "run"),
            env,
            log_dir,
            ready_url=f"http://127.0.0.1:{self.http_port}/readyz",
            ready_needs_ok=True,
            ready_within=ready_within,
        )

    async def metrics_text(self) -> str:
        async with httpx.AsyncClient(timeout=2.0) as client:
            response = await client.get(f"http://127.0.0.1:{self.http_port}/metrics")
            return response.text


FakeKind = Literal["anthropic", "ollama", "openai"]


class FakeProcess(ChildProcess):
    """`python -m testkit.fake KIND` as a child process on a free loopback port, steered over `/_fake/*`.

    async with FakeProcess("anthropic", FakeConfig(delay=1.0)) as fake:
        ... fake.url ...
        await fake.configure(fault_rate=0.2)
        print(await fake.stats())

    `options` are more command-line flags (`--delay 0.2`, see `python -m testkit.fake anthropic --help`).
    Ready once `/_fake/stats` answers at all.
    """

    def __init__(
        self,
        kind: FakeKind,
        config: FakeConfig | None = None,
        *,
        name: str | None = None,
        log_dir: Path | None = None,
        script: tuple[Step, ...] = (),
        options: Sequence[str] = (),
        start_timeout: float = 15.0,
    ) -> None:
        self.kind = kind
        self.port = free_port()
        args = python_module("testkit.fake", kind, "--port", str(self.port))
        if config is not None:
            args += ["--config", orjson.dumps(config.to_json()).decode()]
        if script:
            args += ["--script", orjson.dumps([step.to_json() for step in script]).decode()]
        super().__init__(
            name or f"fake-{kind}",
            [*args, *options],
            child_env({}),
            log_dir,
            ready_url=f"{self.url}/_fake/stats",
            ready_needs_ok=False,
            ready_within=start_timeout,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
        if not self.alive:
            raise RuntimeError(f"{self.name} is not running")
        content = None if payload is None else orjson.dumps(payload)
        async with httpx.AsyncClient(base_url=self.url, timeout=10.0) as control:
            response = await control.request(method, path, content=content)
        response.raise_for_status()
        return orjson.loads(response.content)
