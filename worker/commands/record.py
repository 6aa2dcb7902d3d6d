"""`agent-worker record --out FILE.jsonl`: capture live job messages, body and headers, for `replay`.

A plain core NATS subscription on the job subjects (WORKER_SUBJECTS, or --subjects): every message
published to them while it runs is copied, and nothing is consumed. The jobs stream's durable consumer
and its work-queue retention are not touched, nothing is acked, and the workers see every job as
before. Jobs already waiting in the stream when recording starts are not captured.

Each message becomes one JSON line: subject, time received, NATS headers
(the signature included, so a signed replay verifies) and the body, as text when it is UTF-8 and as
base64 otherwise, byte for byte either way. Each line is written whole and flushed before the next, so
the file is complete whenever recording ends: after --count messages, after --duration seconds, or on
Ctrl-C or SIGTERM (the messages already received are written first). Exit status 0 then.

--redact replaces the system prompt and the user message with placeholder text of the same length
in characters and UTF-8 bytes (size limits and quota reservations replay the same) and drops the
signature header (it signed the original body).

--stream NAME copies the messages stored in a stream instead, read-only (an ordered consumer; --since
to start later, --subjects for one filter subject): for example an archive that republishes the jobs
stream (docs/recordings.md), whose copies are written with their original subject and headers. A
work-queue stream is refused: reading it would take its messages away.

Progress goes to stderr: a line when recording starts and one when it ends, and a live count on a
terminal. Connection settings are the worker's (NATS_URL, NATS_CREDS, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from worker.commands._nats import ReadRange, WorkQueueError, connect_or_give_up, parse_duration, read_stream
from worker.logging import configure_logging, shown_server
from worker.progress import Progress
from worker.recorded_jobs import RecordedMessage, encode_recorded
from worker.redact import redact_body, redact_headers
from worker.settings import Settings, SettingsError

__all__ = ["Recorder", "add_arguments", "run"]

EXIT_USAGE = 2
# Headers a stream's republish adds to each copy (nats-server); the original subject is in the first.
_REPUBLISHED_SUBJECT = "Nats-Subject"
_REPUBLISH_HEADERS = frozenset(
    {_REPUBLISHED_SUBJECT, "Nats-Stream", "Nats-Sequence", "Nats-Time-Stamp", "Nats-Last-Sequence"}
)
# A recorder that falls behind loses messages (a slow consumer, counted by the client); room for bursts.
_PENDING_MESSAGES = 1_000_000
_PENDING_BYTES = 1024 * 2**20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1] if __doc__ else None
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="JSONL file to write (replaced; mode 0600)"
    )
    parser.add_argument("--count", type=int, metavar="N", help="stop after N messages")
    parser.add_argument("--duration", type=float, metavar="SECS", help="stop after SECS seconds")
    parser.add_argument(
        "--subjects", metavar="SUBJ,...", help="subjects to record (default: WORKER_SUBJECTS, the job subjects)"
    )
    parser.add_argument(
        "--redact", action="store_true", help="replace prompts and messages with same-length text; drop signatures"
    )
    parser.add_argument(
        "--stream",
        metavar="NAME",
        help="copy the messages stored in stream NAME (an archive of jobs, docs/recordings.md) instead of live ones",
    )
    parser.add_argument(
        "--since", type=parse_duration, metavar="DURATION", help="with --stream: those stored in the last 90m, 24h, 7d…"
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"agent-worker record: bad setting: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.stream is None and args.since is not None:
        print("agent-worker record: --since reads a stream: it needs --stream", file=sys.stderr)
        return EXIT_USAGE
    if args.stream is not None and args.duration is not None:
        print("agent-worker record: --stream copies what is stored; --duration is for live messages", file=sys.stderr)
        return EXIT_USAGE
    default = settings.subjects if args.stream is None else (">",)
    subjects = default if args.subjects is None else tuple(s for s in args.subjects.split(",") if s.strip())
    if not subjects or (args.stream is not None and len(subjects) > 1):
        print("agent-worker record: --subjects names no subject (or several with --stream)", file=sys.stderr)
        return EXIT_USAGE
    if args.count is not None and args.count < 1:
        print("agent-worker record: --count must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.duration is not None and args.duration <= 0:
        print("agent-worker record: --duration must be positive", file=sys.stderr)
        return EXIT_USAGE
    # Errors only: stderr is for the progress lines; messages lost to a slow consumer are counted below.
    configure_logging(settings.log_format, level=logging.ERROR, stream=sys.stderr)
    try:
        # Readable by its owner only: a recording holds customers' prompts (unless --redact).
        out = os.fdopen(os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
    except OSError as exc:
        print(f"agent-worker record: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with out:
        recorder = Recorder(out, redact=args.redact, count=args.count)
        record = _record if args.stream is None else _copy_stream
        try:
            asyncio.run(record(settings, [s.strip() for s in subjects], recorder, args))
        except (OSError, TimeoutError, NotFoundError, WorkQueueError) as exc:
            # The server is unreachable, the stream is missing or a work queue, the file cannot be written.
            print(f"agent-worker record: {str(exc) or repr(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:  # before the subscription was up: nothing recorded
            print("agent-worker record: interrupted before recording started", file=sys.stderr)
            return 130
    return 0


class Recorder:
    """Writes each message as one whole, flushed line; `done` is set once `count` messages are written."""

    def __init__(self, out: BinaryIO, *, redact: bool = False, count: int | None = None) -> None:
        self.out = out
        self.redact = redact
        self.count = count
        self.seen = 0
        self.written = 0
        self.bytes = 0
        self.done = asyncio.Event()
        self.progress = Progress(count, sys.stderr, label="messages")

    async def on_message(self, msg: Msg) -> None:
        """A live message."""
        self.seen += 1
        self.write(msg.subject, msg.data, msg.headers, datetime.now(UTC))
        self.progress.advance()  # (a stream's reader draws its own)

    def on_stored(self, msg: Msg, stored_ns: int) -> bool:
        """A message read from a stream; False once no more are wanted (--count, or a signal)."""
        headers = msg.headers
        subject = msg.subject
        if headers is not None and _REPUBLISHED_SUBJECT in headers:
            # A republished copy: the job as it was published, without what republishing added.
            subject = headers[_REPUBLISHED_SUBJECT]
            headers = {name: value for name, value in headers.items() if name not in _REPUBLISH_HEADERS} or None
        self.write(subject, msg.data, headers, datetime.fromtimestamp(stored_ns / 1e9, UTC))
        return not self.done.is_set()

    def report(self, out: Path, elapsed: float) -> None:
        self.progress.clear()
        print(
            f"agent-worker record: {self.written} messages ({self.bytes:,} bytes) written to {out} in {elapsed:.1f} s",
            file=sys.stderr,
        )

    def write(self, subject: str, body: bytes, headers: Mapping[str, str] | None, at: datetime) -> None:
        if self.count is not None and self.written >= self.count:
            return
        if self.redact:
            body, headers = redact_body(body), redact_headers(headers)
        line = encode_recorded(RecordedMessage(subject, body, headers, at))
        self.out.write(line)
        self.out.flush()
        self.written += 1
        self.bytes += len(line)
        if self.count is not None and self.written >= self.count:
            self.done.set()


@contextlib.asynccontextmanager
async def _connected(settings: Settings, stop: asyncio.Event) -> AsyncIterator[Client]:
    """Connected, with Ctrl-C and SIGTERM setting `stop` (as --count does) instead of ending the process.

    Until connected they end the process as usual: nothing has been written yet.
    """
    nc = await connect_or_give_up(settings, name="agent-worker-record")
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        yield nc
    finally:
        if not nc.is_closed:
            await nc.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _record(settings: Settings, subjects: list[str], recorder: Recorder, args: argparse.Namespace) -> None:
    started = time.monotonic()
    async with _connected(settings, recorder.done) as nc:
        subscriptions = [
            await nc.subscribe(
                subject,
                cb=recorder.on_message,
                pending_msgs_limit=_PENDING_MESSAGES,
                pending_bytes_limit=_PENDING_BYTES,
            )
            for subject in subjects
        ]
        await nc.flush()
        print(
            f"agent-worker record: recording {', '.join(subjects)} from {_server(nc)} to {args.out}"
            f"{' (redacted)' if recorder.redact else ''}; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.done.wait(), args.duration)
        # Unsubscribes, then writes what was already received (a signal included): nothing the server sent is lost.
        await nc.drain()
    # The client counts every message that reached it, also those it dropped for want of room.
    dropped = sum(subscription.delivered for subscription in subscriptions) - recorder.seen
    recorder.report(args.out, time.monotonic() - started)
    if dropped > 0:
        print(
            f"agent-worker record: {dropped} messages were dropped, arriving faster than they could be written",
            file=sys.stderr,
        )


async def _copy_stream(settings: Settings, subjects: list[str], recorder: Recorder, args: argparse.Namespace) -> None:
    """The messages stored in `args.stream` (read-only), as `record` writes live ones."""
    started = time.monotonic()
    start = None if args.since is None else datetime.now(UTC) - args.since
    async with _connected(settings, recorder.done) as nc:
        print(f"agent-worker record: copying {args.stream} ({subjects[0]}) to {args.out}", file=sys.stderr, flush=True)
        await read_stream(nc, args.stream, subjects[0], ReadRange(start), recorder.on_stored, label="messages")
    recorder.report(args.out, time.monotonic() - started)


def _server(nc: Client) -> str:
    """host:port of the connected server, never its user information."""
    url = nc.connected_url
    return "?" if url is None else shown_server(url)
