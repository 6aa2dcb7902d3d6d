"""`python -m worker.testing.fake_ollama [flags]`: the fake Ollama /api/chat as a process (flags: `--help`)."""

from __future__ import annotations

from collections.abc import Sequence

from worker.testing._cli import run_cli
from worker.testing.ollama_server import FakeOllama

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(FakeOllama, "fake Ollama /api/chat", argv)


if __name__ == "__main__":
    raise SystemExit(main())
