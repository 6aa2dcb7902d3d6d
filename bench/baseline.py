"""Run the bare SDK baseline (`bench.bare_sdk`) in its own process and read its report."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from bench.providers import BenchProvider
from testkit.process import python_module

__all__ = ["bare_sdk"]


async def bare_sdk(mode: str, provider: BenchProvider, fake_url: str, *args: str) -> dict[str, Any]:
    """`python -m bench.bare_sdk MODE` for `provider`, against its fake at `fake_url`."""
    argv = python_module("bench.bare_sdk", mode, "--provider", provider.name, "--base-url", provider.base_url(fake_url))
    process = await asyncio.create_subprocess_exec(
        *argv,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"bench.bare_sdk {mode} failed ({process.returncode}): {err.decode()[-2000:]}")
    report: dict[str, Any] = orjson.loads(out)
    return report
