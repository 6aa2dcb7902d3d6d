"""The command line every fake shares: `python -m testkit.fake KIND [flags]` (`testkit.fake`).

When listening, the fake prints its URL (`http://127.0.0.1:PORT`) as the first line on stdout and
serves until SIGTERM or SIGINT. Every flag is also settable later through `POST /_fake/config`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from testkit._fake import FakeConfig, FakeServer, Step

__all__ = ["build_parser", "config_from_args", "run_cli"]

_NOT_CONFIG = frozenset({"host", "port", "config", "script"})


def _csv(kind: type[Any]) -> Any:
    return lambda text: tuple(kind(part) for part in text.split(",") if part.strip())


def _optional_float(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def build_parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    # Flags left out stay out of the namespace, so the config's own defaults (and --config) stand.
    parser = argparse.ArgumentParser(prog=prog, description=description, argument_default=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    parser.add_argument("--delay", type=float, help="seconds before each reply")
    parser.add_argument("--fault-rate", type=float, help="chance 0..1 of a random fault per call")
    parser.add_argument("--fault-statuses", type=_csv(int), help="statuses random faults use, e.g. 429,529,500")
    parser.add_argument("--retry-after", type=_optional_float, help="retry-after seconds on 429/503/529, or none")
    parser.add_argument("--down", action="store_true", help="drop every call's connection")
    parser.add_argument("--reply-text", help="the text every reply carries")
    parser.add_argument("--models", type=_csv(str), help="comma-separated models known; others get 404")
    parser.add_argument("--api-key", help="Anthropic, OpenAI: the only key accepted (default: any)")
    parser.add_argument("--stream-always", action="store_true", help="Ollama: always stream NDJSON")
    parser.add_argument("--seed", type=int, help="seed of the random faults")
    parser.add_argument("--config", type=orjson.loads, default={}, help="JSON object of config fields (flags win)")
    parser.add_argument(
        "--script", default=None, help="JSON list of steps, or @FILE holding one, answered first, in order"
    )
    return parser


def config_from_args(args: argparse.Namespace) -> FakeConfig:
    config = FakeConfig()
    config.update(args.config)
    config.update({name: value for name, value in vars(args).items() if name not in _NOT_CONFIG})
    return config


def _script(arg: str | None) -> list[Step]:
    if not arg:
        return []
    text = Path(arg[1:]).read_text() if arg.startswith("@") else arg
    steps = orjson.loads(text)
    if not isinstance(steps, list):
        raise SystemExit("--script: a JSON list of steps is expected")
    return [Step.from_json(step) for step in steps]


async def _serve(server: FakeServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        print(server.url, flush=True)
        await stop.wait()


def run_cli(server_class: type[FakeServer], argv: Sequence[str] | None = None) -> int:
    prog = f"python -m testkit.fake {server_class.kind}"
    args = build_parser(server_class.cli_description, prog).parse_args(argv)
    server = server_class(config_from_args(args), host=args.host, port=args.port, script=_script(args.script))
    asyncio.run(_serve(server))
    return 0
