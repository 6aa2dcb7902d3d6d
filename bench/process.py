"""What the benchmarks' own processes share: the ready marker their harnesses print, and the open-files limit.

Every process a benchmark starts is a `testkit.process.ChildProcess` (or its `WorkerProcess`, `FakeProcess`).
"""

from __future__ import annotations

import resource

__all__ = ["READY", "raise_open_files_limit"]

READY = b"bench-ready"
"""What a benchmark's own harness process prints on stdout once it is consuming."""


def raise_open_files_limit(wanted: int = 8192) -> None:
    """Let this process and the ones it starts hold T2's thousand connections (a soft limit of 1024 is common)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
