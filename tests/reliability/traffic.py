"""Jobs as the API publishes them (docs/contract.md §2), and a fast publisher that knows which ones were stored.

A job counts as sent only once its PubAck arrived: that is the moment the API would tell its caller
"queued", and from then on the worker owes it a result or a dead letter.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import nats.errors
import nats.js.errors
import orjson

from testkit.jobs import example_envelope, example_job
from worker.contract import JOB_SUBJECT, MSG_ID_HEADER

__all__ = ["Outgoing", "PublishReport", "envelope", "good_jobs", "publish_jobs"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish: `key` identifies it in the report (the runId, or a label for poison)."""

    key: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def envelope(
    run_id: str,
    *,
    tier: str = "m5",
    model: str | None = "claude-sonnet-4-6",
    message: str | None = None,
    timeout_secs: int | None = 300,
    max_tokens: int = 256,
    reply_to: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    """A seed-format job envelope; `data` adds or overrides job fields."""
    job = example_job(
        runId=run_id,
        tier=tier,
        model=model,
        inputPayload={"message": message or f"Summarise the notes of run {run_id}."},
        timeoutSecs=timeout_secs,
        maxTokens=max_tokens,
        **data,
    )
    return example_envelope(job, job_id=str(uuid.uuid4()), reply_to=reply_to)


def good_jobs(count: int, *, prefix: str, **fields: Any) -> list[Outgoing]:
    """`count` valid jobs with run ids `<prefix>-<n>`; `fields` go to `envelope`."""
    jobs = []
    for n in range(count):
        run_id = f"{prefix}-{n:06d}"
        jobs.append(Outgoing(run_id, orjson.dumps(envelope(run_id, **fields))))
    return jobs


@dataclass
class PublishReport:
    acked: set[str] = field(default_factory=set)
    """Keys whose PubAck arrived: the jobs the worker owes an outcome."""
    duplicates: int = 0
    """PubAcks that said the stream had already stored this Nats-Msg-Id (a retried publish)."""
    retries: int = 0
    failed: set[str] = field(default_factory=set)
    """Keys never acked before the give-up time; not counted as sent."""
    seconds: float = 0.0


# What a publish may meet while a nats-server restarts or a cluster elects a new leader.
_TRANSIENT = (
    TimeoutError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
)


async def publish_jobs(
    js: Any,
    messages: Sequence[Outgoing],
    *,
    subject: str = JOB_SUBJECT,
    concurrency: int = 256,
    attempt_timeout: float = 5.0,
    give_up_after: float = 120.0,
) -> PublishReport:
    """Publish with `concurrency` requests in flight, retrying transient failures under the same Nats-Msg-Id.

    The message id makes a retry after a lost PubAck harmless: the stream stores the job once and
    answers `duplicate`. The id is `<key>#<index>`, so deliberately repeated keys are still two messages.
    """
    report = PublishReport()
    started = time.monotonic()
    deadline = started + give_up_after
    queue: asyncio.Queue[tuple[int, Outgoing]] = asyncio.Queue()
    for item in enumerate(messages):
        queue.put_nowait(item)

    async def one(index: int, message: Outgoing) -> None:
        headers = {**message.headers, MSG_ID_HEADER: f"{message.key}#{index}"}
        while True:
            try:
                ack = await js.publish(subject, message.body, timeout=attempt_timeout, headers=headers)
            except _TRANSIENT:
                pass
            except nats.js.errors.APIError as exc:
                # A cluster without a stream leader answers 503-style API errors for a moment.
                if exc.code not in (503, 504):
                    raise
            else:
                if ack.duplicate:
                    report.duplicates += 1
                report.acked.add(message.key)
                return
            if time.monotonic() > deadline:
                report.failed.add(message.key)
                return
            report.retries += 1
            await asyncio.sleep(0.2)

    async def lane() -> None:
        while not queue.empty():
            index, message = queue.get_nowait()
            await one(index, message)

    await asyncio.gather(*(lane() for _ in range(min(concurrency, max(1, len(messages))))))
    report.seconds = time.monotonic() - started
    return report
