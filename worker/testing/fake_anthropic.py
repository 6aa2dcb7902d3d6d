"""`python -m worker.testing.fake_anthropic [flags]`: the fake Anthropic Messages API as a process (flags: `--help`)."""

from __future__ import annotations

from collections.abc import Sequence

from worker.testing._cli import run_cli
from worker.testing.anthropic_server import FakeAnthropic

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(FakeAnthropic, "fake Anthropic Messages API", argv)


if __name__ == "__main__":
    raise SystemExit(main())
