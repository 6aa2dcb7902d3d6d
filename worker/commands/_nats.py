"""NATS for the one-shot commands (`record`, `reprice`): a connection that gives up, and a stream read read-only.

`read_stream` reads a stream's stored messages through nats-py's ordered consumer (ephemeral, in memory,
no acks, gone when the command ends): never a durable consumer, never a write to a stream. It reads from
a start time (or the beginning) up to the last message stored when it began, or up to an end time.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy, RetentionPolicy

from worker.jetstream.topology import connect
from worker.metrics import Metrics
from worker.progress import Progress
from worker.settings import Settings

__all__ = [
    "GIVE_UP_SECS",
    "NatsUnreachableError",
    "ReadRange",
    "WorkQueueError",
    "connect_or_give_up",
    "parse_duration",
    "parse_time",
    "read_stream",
    "stream_position",
]

#: A replica waits for NATS forever; a command someone is waiting on says so after this long instead.
GIVE_UP_SECS = 15.0
# No message for this long while more were expected: the read has stalled (a lost server, say).
_STALL_SECS = 30.0
# The ordered consumer's backlog in this process: flow control keeps the server within it.
_PENDING_BYTES = 64 * 2**20
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_UNIT_SECS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class NatsUnreachableError(OSError):
    """No server of NATS_URL answered in time; the message names the variable, not its value."""


class WorkQueueError(ValueError):
    """The stream asked for is a work queue, which no reader may consume without taking from it."""


async def connect_or_give_up(settings: Settings, *, name: str) -> Client:
    try:
        return await asyncio.wait_for(connect(settings, name=name, metrics=Metrics()), GIVE_UP_SECS)
    except TimeoutError:
        raise NatsUnreachableError(
            f"no NATS server of NATS_URL answered within {GIVE_UP_SECS:g} s (is it running, are the credentials right?)"
        ) from None


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `24h`, `7d`, `2w` (a bare number is seconds); an argparse type."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 15m, 24h, 7d or 2w")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECS[match.group(2)])


def parse_time(text: str) -> datetime:
    """An ISO 8601 time, UTC unless it says otherwise; an argparse type."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time such as 2026-12-01T00:00:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True, slots=True)
class ReadRange:
    start: datetime | None = None
    end: datetime | None = None


#: Called with each message and the time it was stored (ns since the epoch); returns False to stop reading.
OnMessage = Callable[[Msg, int], bool]


async def read_stream(
    nc: Client, stream: str, subject: str, window: ReadRange, on_message: OnMessage, *, label: str
) -> int:
    """Hand each message of `stream` on `subject` stored in `window` to `on_message`, in stream order.

    Returns how many were handed over. A progress bar labelled `label` is drawn on a terminal.
    """
    js = nc.jetstream()
    stored = await js.stream_info(stream)
    if stored.config.retention == RetentionPolicy.WORK_QUEUE:
        # A consumer of a work queue takes its messages away (from the workers, for the jobs stream).
        raise WorkQueueError(f"{stream} is a work-queue stream: reading it would take its messages away")
    last = stored.state.last_seq  # messages stored after this are not read
    if last == 0:
        return 0
    reader = _Reader(on_message, last, window.end, label)
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.ALL if window.start is None else DeliverPolicy.BY_START_TIME,
        opt_start_time=window.start,
    )
    subscription = await js.subscribe(
        subject,
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


class _Reader:
    def __init__(self, on_message: OnMessage, last_seq: int, end: datetime | None, label: str) -> None:
        self.on_message_read = on_message
        self.last_seq = last_seq
        self.end_ns = None if end is None else int(end.timestamp() * 1_000_000_000)
        self.read = 0
        self.done = asyncio.Event()
        self.label = label
        self.progress = Progress(None, sys.stderr, label=label)

    async def on_message(self, msg: Msg) -> None:
        if self.done.is_set():
            return
        stream_seq, stored_ns, pending = stream_position(msg.reply)
        if self.end_ns is not None and stored_ns > self.end_ns:
            self.done.set()
            return
        more = self.on_message_read(msg, stored_ns)
        self.read += 1
        self.progress.advance()
        if not more or pending == 0 or stream_seq >= self.last_seq:
            self.done.set()

    async def wait(self) -> None:
        """Until the last message of the range; raises TimeoutError if none comes for a long while."""
        while not self.done.is_set():
            seen = self.read
            try:
                await asyncio.wait_for(self.done.wait(), _STALL_SECS)
            except TimeoutError:
                if self.read == seen:
                    raise TimeoutError(f"no {self.label} for {_STALL_SECS:g} s after {seen:,} read") from None


def stream_position(reply: str) -> tuple[int, int, int]:
    """Stream sequence, storage time (ns) and messages pending, from a JetStream message's reply subject.

    `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>`, or the newer form
    with domain and account hash before the stream and a random token after `pending`. Read here rather
    than through `msg.metadata`, which builds objects and a datetime per message: at tens of thousands
    of messages a second that is a fifth of the time.
    """
    tokens = reply.split(".")
    tail = -1 if len(tokens) == 9 else -2
    return int(tokens[tail - 3]), int(tokens[tail - 1]), int(tokens[tail])
