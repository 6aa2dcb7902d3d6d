"""`python -m testkit.fake_openai [flags]`: the fake OpenAI Chat Completions API as a process (`--help`)."""

from __future__ import annotations

from collections.abc import Sequence

from testkit._cli import run_cli
from testkit.openai_server import FakeOpenAI

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(FakeOpenAI, "fake OpenAI Chat Completions API", argv)


if __name__ == "__main__":
    raise SystemExit(main())
