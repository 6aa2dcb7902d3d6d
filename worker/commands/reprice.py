"""`agent-worker reprice --catalog NEW.toml`: the stored results of MASCHINA_RESULTS priced under another catalog.

Reads the results stream (WORKER_RESULTS_STREAM) read-only, through an ordered consumer from a start time:
an ephemeral, in-memory consumer with no acks, deleted by the server when the command ends. Never a
durable consumer, never a write to a stream. The read ends at the last result stored when it began (or at
--to), so results stored meanwhile are left out.

Each run is gated again with its tier and requested model and its recorded usage billed with the new
multiplier: a run the new catalog refuses bills 0, a run refused before and allowed
now is counted as "newly allowed" (its usage is unknown, so it is not priced). Output: billed tokens
before (as stored), after and the difference, per tier and model (or --by tier, --by model) with totals;
--json writes the same as one JSON object. A progress bar is drawn on a terminal.

Time range: --since 24h (s, m, h, d or w), or --from TIME [--to TIME] in ISO 8601 (UTC unless the time
says otherwise); default: every stored result. Connection settings are the worker's (NATS_URL, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from catalog import CatalogError, load_catalog
from worker.commands._nats import (
    ReadRange,
    WorkQueueError,
    connect_or_give_up,
    parse_duration,
    parse_time,
    read_stream,
)
from worker.contract import RESULTS_SUBJECT_PREFIX
from worker.logging import configure_logging
from worker.reprice import Repricer
from worker.settings import Settings, SettingsError

__all__ = ["add_arguments", "read_results", "run"]

EXIT_USAGE = 2
EXIT_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1] if __doc__ else None
    parser.add_argument("--catalog", type=Path, required=True, metavar="NEW.toml", help="the catalog to price under")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--since", type=parse_duration, metavar="DURATION", help="results of the last 90m, 24h, 7d…")
    when.add_argument("--from", dest="start", type=parse_time, metavar="TIME", help="results stored from TIME")
    parser.add_argument("--to", dest="end", type=parse_time, metavar="TIME", help="… up to TIME (inclusive)")
    parser.add_argument(
        "--by", choices=["tier", "model", "tier,model"], default="tier,model", help="group by (default: tier,model)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout instead of the tables")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        catalog = load_catalog(args.catalog)
    except (SettingsError, CatalogError, OSError) as exc:
        print(f"agent-worker reprice: {exc}", file=sys.stderr)
        return EXIT_USAGE
    start = datetime.now(UTC) - args.since if args.since is not None else args.start
    if args.end is not None and start is not None and args.end < start:
        print("agent-worker reprice: --to is before the start of the range", file=sys.stderr)
        return EXIT_USAGE
    # Errors only: stdout is the report, and stderr's last line says what was read.
    configure_logging(settings.log_format, level=logging.ERROR, stream=sys.stderr)
    repricer = Repricer(catalog, by=args.by)
    started = time.monotonic()
    try:
        read = asyncio.run(read_results(settings, ReadRange(start, args.end), repricer.add))
    except (OSError, TimeoutError, NotFoundError, WorkQueueError) as exc:
        print(f"agent-worker reprice: cannot read {settings.results_stream}: {str(exc) or repr(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("agent-worker reprice: interrupted", file=sys.stderr)
        return 130
    elapsed = time.monotonic() - started
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(repricer.to_json()) + b"\n")
    else:
        print(repricer.report())
    print(
        f"agent-worker reprice: {read:,} results read from {settings.results_stream} in {elapsed:.3f} s "
        f"({read / max(elapsed, 1e-9):,.0f}/s)",
        file=sys.stderr,
    )
    return 0


async def read_results(settings: Settings, window: ReadRange, add: Callable[[bytes], None]) -> int:
    """Hand the body of every stored result in `window` to `add`, in stream order; returns how many were read."""

    def on_result(msg: Msg, _stored_ns: int) -> bool:
        add(msg.data)
        return True

    nc = await connect_or_give_up(settings, name="agent-worker-reprice")
    try:
        return await read_stream(
            nc, settings.results_stream, RESULTS_SUBJECT_PREFIX + ">", window, on_result, label="results"
        )
    finally:
        await nc.close()
