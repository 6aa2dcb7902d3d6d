"""What both example suites run against: a nats-server, the fake providers and one real `agent-worker run`.

The Python suite (tests/examples) enters `example_stack()` once per module; the TypeScript suite runs under
`python -m tests.examples.stack -- COMMAND...`, which starts the stack, runs COMMAND with `stack.env()` added to
its environment, stops the stack and exits with COMMAND's code.

The worker requires signatures (`EXAMPLES_SIGNING_KEY`) and allows a custom inbox prefix besides `_INBOX.`
(`EXAMPLES_INBOX_PREFIX`), and traces to an OTLP receiver (so a result carries the job span's `traceparent`).
The fake Anthropic knows Sonnet and Haiku only, so Opus gets its 404 (`failed`,
`provider_bad_request`); the fake Ollama answers after 30 s, so a job with `timeoutSecs` 1 ends `timed_out`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from testkit import FakeConfig
from testkit.otlp import OtlpReceiver
from testkit.process import FakeProcess, WorkerProcess
from worker.embedded import NatsServer

__all__ = ["INBOX_PREFIX", "SIGNING_KEY", "ExampleStack", "example_stack", "main"]

SIGNING_KEY = "examples-signing-key"
INBOX_PREFIX = "api.inbox"
KNOWN_ANTHROPIC_MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5-20251001")
OLLAMA_DELAY_SECS = 30.0


@dataclass(frozen=True, slots=True)
class ExampleStack:
    nats: NatsServer
    anthropic: FakeProcess
    worker: WorkerProcess

    def env(self) -> dict[str, str]:
        """What a suite needs to know, as environment variables."""
        return {
            "NATS_URL": self.nats.url,
            "EXAMPLES_SIGNING_KEY": SIGNING_KEY,
            "EXAMPLES_INBOX_PREFIX": INBOX_PREFIX,
            "EXAMPLES_FAKE_ANTHROPIC_URL": self.anthropic.url,
            # For the drift check of the generated TypeScript types: `$AGENT_WORKER_PYTHON -m worker schema`.
            "AGENT_WORKER_PYTHON": sys.executable,
        }


@contextlib.asynccontextmanager
async def example_stack(log_dir: Path) -> AsyncIterator[ExampleStack]:
    with NatsServer() as server:
        anthropic = FakeProcess("anthropic", FakeConfig(models=KNOWN_ANTHROPIC_MODELS))
        ollama = FakeProcess("ollama", FakeConfig(delay=OLLAMA_DELAY_SECS))
        async with anthropic, ollama, OtlpReceiver() as otlp:
            settings = {
                "NATS_URL": server.url,
                "ANTHROPIC_API_KEY": "sk-examples",
                "ANTHROPIC_BASE_URL": anthropic.url,
                "OLLAMA_HOST": ollama.url,
                "WORKER_SIGNING_KEY": SIGNING_KEY,
                "WORKER_REPLY_PREFIXES": f"_INBOX.,{INBOX_PREFIX}.",
                "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            }
            worker = WorkerProcess("worker-examples", settings, log_dir)
            try:
                await worker.start()
                yield ExampleStack(server, anthropic, worker)
            finally:
                await asyncio.to_thread(worker.stop)


async def _run(command: Sequence[str], cwd: Path | None) -> int:
    with tempfile.TemporaryDirectory(prefix="agent-worker-examples-") as log_dir:
        async with example_stack(Path(log_dir)) as stack:
            child = await asyncio.create_subprocess_exec(*command, cwd=cwd, env={**os.environ, **stack.env()})
            code = await child.wait()
            if code != 0:
                print(f"--- the worker's log, last lines:\n{stack.worker.log_tail(40)}", file=sys.stderr)
            return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.examples.stack", description=__doc__.splitlines()[0])
    parser.add_argument("--cwd", type=Path, help="directory COMMAND runs in")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no COMMAND given")
    return asyncio.run(_run(command, args.cwd))


if __name__ == "__main__":
    raise SystemExit(main())
