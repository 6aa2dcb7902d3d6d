"""Run the bare SDK baseline (`bench.bare_sdk`) in its own process and read its report."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from testkit.process import python_module

__all__ = ["bare_sdk"]


async def bare_sdk(mode: str, base_url: str, *args: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        *python_module("bench.bare_sdk", mode, "--base-url", base_url, *args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"bench.bare_sdk {mode} failed ({process.returncode}): {err.decode()[-2000:]}")
    report: dict[str, Any] = orjson.loads(out)
    return report
