"""`python -m testkit.fake_ollama [flags]`: the fake Ollama /api/chat as a process (flags: `--help`)."""

from __future__ import annotations

from collections.abc import Sequence

from testkit._cli import run_cli
from testkit.ollama_server import FakeOllama

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(FakeOllama, "fake Ollama /api/chat", argv)


if __name__ == "__main__":
    raise SystemExit(main())
