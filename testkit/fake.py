"""`python -m testkit.fake KIND [flags]`: one fake provider as a process; KIND is anthropic, ollama or openai.

It prints its URL on stdout once listening and serves until SIGTERM (`testkit._cli`; flags: `KIND --help`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from testkit._cli import run_cli
from testkit._fake import FakeServer
from testkit.anthropic_server import FakeAnthropic
from testkit.ollama_server import FakeOllama
from testkit.openai_server import FakeOpenAI

__all__ = ["FAKES", "main"]

FAKES: dict[str, type[FakeServer]] = {fake.kind: fake for fake in (FakeAnthropic, FakeOllama, FakeOpenAI)}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in FAKES:
        print(f"usage: python -m testkit.fake {{{','.join(FAKES)}}} [flags]", file=sys.stderr)
        return 2
    return run_cli(FAKES[args[0]], args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
