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
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from catalog import CatalogError, load_catalog
from worker.commands._nats import connect_or_give_up
from worker.contract import RESULTS_SUBJECT_PREFIX
from worker.logging import configure_logging
from worker.progress import Progress
from worker.reprice import Repricer
from worker.settings import Settings, SettingsError

__all__ = ["ReadRange", "add_arguments", "parse_duration", "read_results", "run"]

EXIT_USAGE = 2
EXIT_FAILED = 1
# No result for this long while more were expected: the read has stalled (a lost server, say).
_STALL_SECS = 30.0
# The ordered consumer's backlog in this process: flow control keeps the server within it.
_PENDING_BYTES = 64 * 2**20
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_UNIT_SECS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1] if __doc__ else None
    parser.add_argument("--catalog", type=Path, required=True, metavar="NEW.toml", help="the catalog to price under")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--since", type=parse_duration, metavar="DURATION", help="results of the last 90m, 24h, 7d…")
    when.add_argument("--from", dest="start", type=_parse_time, metavar="TIME", help="results stored from TIME")
    parser.add_argument("--to", dest="end", type=_parse_time, metavar="TIME", help="… up to TIME (inclusive)")
    parser.add_argument(
        "--by", choices=["tier", "model", "tier,model"], default="tier,model", help="group by (default: tier,model)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout instead of the tables")


def parse_duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 15m, 24h, 7d or 2w")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECS[match.group(2)])


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time such as 2026-12-01T00:00:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True, slots=True)
class ReadRange:
    start: datetime | None = None
    end: datetime | None = None


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
    except (OSError, TimeoutError, NotFoundError) as exc:
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
    """Hand every stored result in `window` to `add`, in stream order; returns how many were read."""
    nc = await connect_or_give_up(settings, name="agent-worker-reprice")
    try:
        js = nc.jetstream()
        stream = settings.results_stream
        last = (await js.stream_info(stream)).state.last_seq  # results stored after this are not read
        if last == 0:
            return 0
        reader = _Reader(add, last, window.end)
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL if window.start is None else DeliverPolicy.BY_START_TIME,
            opt_start_time=window.start,
        )
        subscription = await js.subscribe(
            RESULTS_SUBJECT_PREFIX + ">",
            stream=stream,
            cb=reader.on_message,
            ordered_consumer=True,
            config=config,
            pending_bytes_limit=_PENDING_BYTES,
        )
        try:
            info = await subscription.consumer_info()
            pending = info.num_pending or 0
            delivered = info.delivered.consumer_seq if info.delivered is not None else 0
            if pending == 0 and delivered == 0:
                return 0  # nothing stored in the range
            reader.progress.total = pending + delivered
            await reader.wait()
        finally:
            reader.progress.clear()
            await subscription.unsubscribe()
        return reader.read
    finally:
        await nc.close()


class _Reader:
    def __init__(self, add: Callable[[bytes], None], last_seq: int, end: datetime | None) -> None:
        self.add = add
        self.last_seq = last_seq
        self.end_ns = None if end is None else int(end.timestamp() * 1_000_000_000)
        self.read = 0
        self.done = asyncio.Event()
        self.progress = Progress(None, sys.stderr, label="results")

    async def on_message(self, msg: Msg) -> None:
        if self.done.is_set():
            return
        stream_seq, stored_ns, pending = _position(msg.reply)
        if self.end_ns is not None and stored_ns > self.end_ns:
            self.done.set()
            return
        self.add(msg.data)
        self.read += 1
        self.progress.advance()
        if pending == 0 or stream_seq >= self.last_seq:
            self.done.set()

    async def wait(self) -> None:
        """Until the last result of the range; raises TimeoutError if none comes for a long while."""
        while not self.done.is_set():
            seen = self.read
            try:
                await asyncio.wait_for(self.done.wait(), _STALL_SECS)
            except TimeoutError:
                if self.read == seen:
                    raise TimeoutError(f"no result for {_STALL_SECS:g} s after {seen:,} read") from None


def _position(reply: str) -> tuple[int, int, int]:
    """Stream sequence, storage time (ns) and messages pending, from a JetStream message's reply subject.

    `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>`, or the newer form
    with domain and account hash before the stream and a random token after `pending`. Read here rather
    than through `msg.metadata`, which builds objects and a datetime per message: at tens of thousands
    of results a second that is a fifth of the time.
    """
    tokens = reply.split(".")
    tail = -1 if len(tokens) == 9 else -2
    return int(tokens[tail - 3]), int(tokens[tail - 1]), int(tokens[tail])
