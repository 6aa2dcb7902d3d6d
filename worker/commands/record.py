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
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from nats.aio.client import Client
from nats.aio.msg import Msg

from worker.commands._nats import connect_or_give_up
from worker.logging import configure_logging
from worker.progress import Progress
from worker.recorded_jobs import RecordedMessage, encode_recorded
from worker.redact import redact_body, redact_headers
from worker.settings import Settings, SettingsError

__all__ = ["Recorder", "add_arguments", "run"]

EXIT_USAGE = 2
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


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"agent-worker record: bad setting: {exc}", file=sys.stderr)
        return EXIT_USAGE
    subjects = settings.subjects if args.subjects is None else tuple(s for s in args.subjects.split(",") if s.strip())
    if not subjects:
        print("agent-worker record: --subjects names no subject", file=sys.stderr)
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
        try:
            asyncio.run(_record(settings, [s.strip() for s in subjects], recorder, args))
        except OSError as exc:  # the server is unreachable, or the file cannot be written
            print(f"agent-worker record: {exc}", file=sys.stderr)
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
        self.seen += 1
        if self.count is not None and self.written >= self.count:
            return
        body, headers = msg.data, msg.headers
        if self.redact:
            body, headers = redact_body(body), redact_headers(headers)
        line = encode_recorded(RecordedMessage(msg.subject, body, headers, datetime.now(UTC)))
        self.out.write(line)
        self.out.flush()
        self.written += 1
        self.bytes += len(line)
        self.progress.advance()
        if self.count is not None and self.written >= self.count:
            self.done.set()


async def _record(settings: Settings, subjects: list[str], recorder: Recorder, args: argparse.Namespace) -> None:
    # Until connected, Ctrl-C and SIGTERM end the process as usual: nothing has been written yet.
    nc = await connect_or_give_up(settings, name="agent-worker-record")
    loop = asyncio.get_running_loop()
    # From here a signal ends the wait like --count does; the messages already received are still written (drain).
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, recorder.done.set)
    started = time.monotonic()
    try:
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
        # Unsubscribes, then writes what was already received: nothing the server sent before is lost.
        await nc.drain()
        # The client counts every message that reached it, also those it dropped for want of room.
        dropped = sum(subscription.delivered for subscription in subscriptions) - recorder.seen
    finally:
        if not nc.is_closed:
            await nc.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        recorder.progress.clear()
    elapsed = time.monotonic() - started
    print(
        f"agent-worker record: {recorder.written} messages ({recorder.bytes:,} bytes) written to {args.out} "
        f"in {elapsed:.1f} s",
        file=sys.stderr,
    )
    if dropped > 0:
        print(
            f"agent-worker record: {dropped} messages were dropped, arriving faster than they could be written",
            file=sys.stderr,
        )


def _server(nc: Client) -> str:
    """host:port of the connected server, never its user information."""
    url = nc.connected_url
    return "?" if url is None else f"{url.hostname}:{url.port}"
