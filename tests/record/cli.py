"""`python -m worker COMMAND` as an asyncio child process, its stderr read line by line as it comes."""

from __future__ import annotations

import asyncio
import sys

from testkit.process import child_env

__all__ = ["Cli"]


class Cli:
    """`python -m worker ARGS` as a child process with stdout and stderr read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stderr: list[str] = []

    @classmethod
    async def start(cls, *args: str, env: dict[str, str]) -> Cli:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker",
            *args,
            env=child_env(env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def stderr_line(self, containing: str, within: float = 30.0) -> str:
        """The first line on stderr holding `containing` (the lines before it are kept for `finish`)."""
        assert self.process.stderr is not None
        return await self._line(self.process.stderr, self.stderr, containing, within)

    async def stdout_line(self, containing: str, within: float = 30.0) -> str:
        assert self.process.stdout is not None
        return await self._line(self.process.stdout, [], containing, within)

    async def _line(self, stream: asyncio.StreamReader, seen: list[str], containing: str, within: float) -> str:
        async with asyncio.timeout(within):
            while True:
                line = (await stream.readline()).decode()
                if not line:
                    raise AssertionError(f"exited before saying {containing!r}: {seen}")
                seen.append(line)
                if containing in line:
                    return line

    async def finish(self, within: float = 60.0) -> tuple[int, bytes, str]:
        async with asyncio.timeout(within):
            out, err = await self.process.communicate()
        return self.process.returncode or 0, out, "".join(self.stderr) + err.decode()

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
