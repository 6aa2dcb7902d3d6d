"""Building seed-format jobs and watching what the worker publishes, for the worker's tests."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from testkit.jobs import example_envelope, example_job
from worker.contract import DLQ_STREAM, DLQ_SUBJECT, JOB_SUBJECT, JOBS_STREAM, RESULTS_STREAM, RESULTS_STREAM_SUBJECTS
from worker.embedded import NatsServer
from worker.jetstream.store import result_subject
from worker.providers.retry import RetryPolicy
from worker.service import Worker
from worker.settings import Settings

__all__ = [
    "FAST_RETRY",
    "Listener",
    "ResultWatch",
    "StartWorker",
    "dead_letters",
    "eventually",
    "job",
    "jobs_left",
    "new_run_id",
    "polled",
    "publish_job",
    "publish_jobs",
    "stored_count",
    "wait_until_acked",
    "worker_settings",
]

# No waits inside a delivery and short ones between deliveries, so retry paths run in a second.
FAST_RETRY = RetryPolicy(base=0.01, cap=0.05, max_calls=1, redelivery_base=0.2, redelivery_cap=0.5)

StartWorker = Callable[..., Awaitable[Worker]]


def worker_settings(server: NatsServer, **overrides: Any) -> Settings:
    """Settings for a test worker: this server, no HTTP port, short ack_wait and grace unless overridden."""
    values: dict[str, Any] = {
        "nats_url": server.url,
        "http_port": 0,
        "ack_wait_secs": 5.0,
        "max_deliver": 3,
        "shutdown_grace_secs": 5.0,
        "worker_id": "worker-test-1",
        **overrides,
    }
    return Settings.from_env({}, **values)


def new_run_id() -> str:
    return str(uuid.uuid4())


def job(run_id: str | None = None, *, reply_to: str | None = None, **data: Any) -> dict[str, Any]:
    """The contract's example job in its envelope, with a fresh runId and job id; `data` fields override."""
    # A shorter system prompt than the example's: the worker tests' figures (quota reservations) are sized on it.
    fields = {"runId": run_id or new_run_id(), "systemPrompt": "You are a research agent.", **data}
    body = example_envelope(example_job(**fields), job_id=str(uuid.uuid4()), reply_to=reply_to)
    if reply_to is None:
        del body["replyTo"]
    return body


async def publish_job(client: Client, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> int:
    """Publish with JetStream, as the API does; returns the job's stream sequence."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    ack = await client.jetstream().publish(JOB_SUBJECT, raw, headers=headers)
    return int(ack.seq)


async def publish_jobs(client: Client, count: int) -> list[dict[str, Any]]:
    """Publish `count` fresh jobs, one after the other; returns their bodies in publishing order."""
    bodies = [job() for _ in range(count)]
    for body in bodies:
        await publish_job(client, body)
    return bodies


async def stored_count(client: Client, run_id: str, stream: str = RESULTS_STREAM) -> int:
    """How many records the results stream holds for `run_id`."""
    subject = result_subject(run_id)
    info = await client.jetstream().stream_info(stream, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


class Listener:
    """A core NATS subscription collecting messages; `next()` waits for one."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.messages: asyncio.Queue[Msg] = asyncio.Queue()
        self._subscription: Subscription | None = None

    async def open(self, client: Client) -> Listener:
        self._subscription = await client.subscribe(self.subject, cb=self.messages.put)
        return self

    async def next(self, within: float = 10.0) -> Msg:
        return await asyncio.wait_for(self.messages.get(), within)

    async def json(self, within: float = 10.0) -> dict[str, Any]:
        message = await self.next(within)
        parsed: dict[str, Any] = orjson.loads(message.data)
        return parsed


class ResultWatch:
    """Every result the worker stores (seen on `maschina.results.>`), by runId."""

    def __init__(self) -> None:
        self.by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._changed = asyncio.Event()

    async def open(self, client: Client) -> ResultWatch:
        await client.subscribe(RESULTS_STREAM_SUBJECTS, cb=self._on_result)
        return self

    async def _on_result(self, message: Msg) -> None:
        result = orjson.loads(message.data)
        self.by_run[result["runId"]].append(result)
        self._changed.set()

    async def wait_for(self, run_ids: list[str] | str, within: float = 10.0) -> dict[str, dict[str, Any]]:
        """The first result of each run, once all have one."""
        wanted = [run_ids] if isinstance(run_ids, str) else run_ids
        async with asyncio.timeout(within):
            while not all(self.by_run.get(run_id) for run_id in wanted):
                self._changed.clear()
                await self._changed.wait()
        return {run_id: self.by_run[run_id][0] for run_id in wanted}

    async def one(self, run_id: str, within: float = 10.0) -> dict[str, Any]:
        return (await self.wait_for(run_id, within))[run_id]


async def jobs_left(client: Client) -> int:
    info = await client.jetstream().stream_info(JOBS_STREAM)
    return int(info.state.messages)


async def dead_letters(client: Client) -> list[Msg]:
    js = client.jetstream()
    count = (await js.stream_info(DLQ_STREAM)).state.messages
    subscription = await js.pull_subscribe(DLQ_SUBJECT, stream=DLQ_STREAM)
    messages = await subscription.fetch(count, timeout=2) if count else []
    await subscription.unsubscribe()
    return messages


_POLL_SECS = 0.05


async def polled(check: Callable[[], Awaitable[bool]], *, within: float = 10.0, what: str) -> None:
    """Poll `check` until it holds: for states the server announces to nobody (a drained queue, a stored or
    acked advisory, a reconnect), so there is no event to await."""
    for _ in range(int(within / _POLL_SECS)):
        if await check():
            return
        await asyncio.sleep(_POLL_SECS)
    raise AssertionError(f"{what} did not hold within {within} s")


async def wait_until_acked(client: Client, within: float = 10.0) -> None:
    """The jobs stream is a work queue: it is empty once every job is acked or terminated."""

    async def drained() -> bool:
        return not await jobs_left(client)

    try:
        await polled(drained, within=within, what="every job acked")
    except AssertionError:
        raise AssertionError(f"{await jobs_left(client)} job(s) still unacked after {within} s") from None


async def eventually(check: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    """`polled` for a check that needs no I/O (the worker's own state)."""

    async def holds() -> bool:
        return check()

    await polled(holds, within=within, what=what)
