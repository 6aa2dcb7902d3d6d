"""`agent-worker`: one entry point; each subcommand lives in its own module under `worker.commands`.

`--help` speaks to the people who run the worker (`DESCRIPTION`, `EPILOG`); this docstring to its developers.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

__all__ = ["COMMANDS", "main"]

# name → (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("worker.commands.run", "run the worker: consume jobs from NATS until SIGTERM"),
    "demo": ("worker.commands.demo", "run sample jobs through an embedded nats-server and print the bill"),
    "replay": ("worker.commands.replay", "run recorded job payloads through gate, routing and billing"),
    "record": ("worker.commands.record", "copy live job messages, body and headers, to a JSONL file for replay"),
    "reprice": (
        "worker.commands.reprice",
        "price the stored results under another catalog: before, after and difference",
    ),
    "catalog": (
        "worker.commands.catalog",
        "print tiers, models and who may use what; validate a catalog file",
    ),
    "usage": ("worker.commands.usage", "print a user's monthly usage: billed, reserved, quota and what remains"),
    "schema": ("worker.commands.schema", "print the JSON Schema of the job and of the result"),
}


DESCRIPTION = """\
Run AI-agent jobs from NATS JetStream: each job is checked against the customer's plan tier and
the model it asks for, sent to that model's provider (Anthropic, OpenAI, Ollama), billed in
tokens, and its result published."""
EPILOG = """\
first steps:
  agent-worker demo               sample jobs through an embedded NATS server, billed results printed
  agent-worker catalog            which tier may use which model, and at what multiplier
  agent-worker run --help         every setting of the worker (environment variables)

`agent-worker COMMAND --help` describes a command. The wire contract (subjects, job, result, error codes)
is docs/contract.md in the repository."""


class Command(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="agent-worker",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            command = cast(Command, importlib.import_module(module))
            command.add_arguments(command_parser)
            command_parser.set_defaults(handler=command.run)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
