"""`python -m testkit.fake_anthropic [flags]`: the fake Anthropic Messages API as a process (flags: `--help`)."""

from __future__ import annotations

from collections.abc import Sequence

from testkit._cli import run_cli
from testkit.anthropic_server import FakeAnthropic

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(FakeAnthropic, "fake Anthropic Messages API", argv)


if __name__ == "__main__":
    raise SystemExit(main())
