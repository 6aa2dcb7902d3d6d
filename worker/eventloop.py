"""The event loop every long-running process runs on: uvloop when installed, else asyncio's own.

`agent-worker run` uses it, and so do the benchmarks' own processes (baselines, harnesses), so that a baseline and
the worker are measured on the same loop. Kept apart from the worker so a baseline imports nothing else of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_event_loop"]

T = TypeVar("T")


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a fresh loop and return its result."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    result: T = uvloop.run(main)
    return result
