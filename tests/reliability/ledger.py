"""What actually happened, read back from the streams: every stored result, every dead letter, and the figures.

The streams are the source of truth, so the suite never trusts what a worker says about itself: a job
is lost when its PubAck arrived and neither a result nor a dead letter names its run, and it is
duplicated when more than one result record names its run.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
import orjson
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from worker.contract import (
    CONSUMER,
    DLQ_DETAIL_HEADER,
    DLQ_ORIGINAL_SUBJECT_HEADER,
    DLQ_REASON_HEADER,
    DLQ_STREAM,
    DLQ_STREAM_SEQ_HEADER,
    JOBS_STREAM,
    RESULTS_STREAM,
    RESULTS_SUBJECT_PREFIX,
)

__all__ = [
    "DeadLetterRecord",
    "Figures",
    "Ledger",
    "ResultRecord",
    "read_ledger",
    "settle",
    "stream_info",
    "wait_until",
]


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ResultRecord:
    run_id: str
    status: str
    code: str | None
    retryable: bool | None
    attempt: int
    worker_id: str | None
    billed_tokens: int


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    reason: str | None
    detail: str | None
    original_subject: str | None
    stream_seq: str | None
    body: bytes

    @property
    def run_id(self) -> str | None:
        """The run id the dead body names, when it is readable enough to name one."""
        try:
            parsed = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(parsed, dict):
            return None
        job = parsed["data"] if isinstance(parsed.get("data"), dict) else parsed
        run_id = job.get("runId")
        return run_id if isinstance(run_id, str) else None


@dataclass
class Ledger:
    results: dict[str, list[ResultRecord]] = field(default_factory=dict)
    dead_letters: list[DeadLetterRecord] = field(default_factory=list)
    results_overwritten: int = 0
    """Result records the stream removed (a per-subject limit replacing a run's record): hidden duplicates."""

    @property
    def stored(self) -> int:
        return sum(len(records) for records in self.results.values())

    @property
    def duplicated(self) -> set[str]:
        return {run_id for run_id, records in self.results.items() if len(records) > 1}

    def one(self, run_id: str) -> ResultRecord:
        records = self.results.get(run_id, [])
        assert len(records) == 1, f"run {run_id} has {len(records)} results"
        return records[0]

    def statuses(self) -> Counter[str]:
        return Counter(records[0].status for records in self.results.values())

    def lost(self, sent: set[str]) -> set[str]:
        dead = {record.run_id for record in self.dead_letters}
        return sent - self.results.keys() - dead


async def _read_stream(js: Any, stream: str) -> tuple[list[Any], int]:
    """Every message in `stream` (an ephemeral consumer from the first sequence) and the stream's deleted count."""
    info = await stream_info(js, stream)
    expected = info.state.messages
    messages: list[Any] = []
    if expected:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=30.0)
        sub = await wait_until(
            lambda: js.pull_subscribe(info.config.subjects[0], stream=stream, config=config),
            within=30.0,
            what=f"a reader of {stream}",
        )
        try:
            while len(messages) < expected:
                try:
                    messages.extend(await sub.fetch(batch=min(1000, expected - len(messages)), timeout=5.0))
                except nats.errors.TimeoutError as exc:
                    raise AssertionError(f"{stream}: read {len(messages)} of {expected} messages") from exc
        finally:
            await sub.unsubscribe()
    return messages, info.state.num_deleted or 0


async def read_ledger(js: Any) -> Ledger:
    ledger = Ledger()
    results, ledger.results_overwritten = await _read_stream(js, RESULTS_STREAM)
    for msg in results:
        body = orjson.loads(msg.data)
        run_id = msg.subject.removeprefix(RESULTS_SUBJECT_PREFIX)
        assert body["runId"] == run_id, f"result on {msg.subject} names run {body['runId']}"
        error = body.get("error") or {}
        ledger.results.setdefault(run_id, []).append(
            ResultRecord(
                run_id=run_id,
                status=body["status"],
                code=error.get("code"),
                retryable=error.get("retryable"),
                attempt=body["attempt"],
                worker_id=body.get("workerId"),
                billed_tokens=body["billing"]["billedTokens"],
            )
        )
    try:
        dead, _ = await _read_stream(js, DLQ_STREAM)
    except nats.js.errors.NotFoundError:
        dead = []
    for msg in dead:
        headers = msg.headers or {}
        ledger.dead_letters.append(
            DeadLetterRecord(
                reason=headers.get(DLQ_REASON_HEADER),
                detail=headers.get(DLQ_DETAIL_HEADER),
                original_subject=headers.get(DLQ_ORIGINAL_SUBJECT_HEADER),
                stream_seq=headers.get(DLQ_STREAM_SEQ_HEADER),
                body=msg.data,
            )
        )
    return ledger


async def wait_until(condition: Callable[[], Awaitable[T]], *, within: float, what: str, interval: float = 0.2) -> T:
    """Poll `condition` until its answer is truthy and return that answer. The streams are polled
    rather than watched because a core-NATS notification is lost across the very server restarts and
    failovers these scenarios cause; an answer that times out is asked again for the same reason."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if answer := await condition():
                return answer
        except (TimeoutError, nats.errors.Error, nats.js.errors.Error):
            pass  # the server or the stream leader is away for a moment
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {within}s waiting for {what}")


async def stream_info(js: Any, stream: str, *, within: float = 30.0) -> Any:
    """The stream's info, asked again while a failover leaves the stream without a leader for a moment."""
    return await wait_until(lambda: js.stream_info(stream), within=within, what=f"{stream}'s info")


async def stream_count(js: Any, stream: str) -> int:
    try:
        info = await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        return 0
    return int(info.state.messages)


async def settle(js: Any, *, outcomes: int, within: float) -> None:
    """Until results + dead letters reach `outcomes` and the consumer has nothing pending or unacknowledged."""

    async def settled() -> bool:
        if await stream_count(js, RESULTS_STREAM) + await stream_count(js, DLQ_STREAM) < outcomes:
            return False
        consumer = await js.consumer_info(JOBS_STREAM, CONSUMER)
        return bool(consumer.num_pending == 0 and consumer.num_ack_pending == 0)

    await wait_until(settled, within=within, what=f"{outcomes} outcomes and an idle consumer")


@dataclass
class Figures:
    """One scenario's line of figures, printed and gathered into the suite's summary table."""

    scenario: str
    sent: int
    stored: int
    lost: int
    duplicated: int
    provider_calls: int
    dead_lettered: int
    wall_secs: float
    notes: str = ""

    @classmethod
    def of(
        cls,
        scenario: str,
        *,
        sent: set[str],
        ledger: Ledger,
        provider_calls: int,
        started: float,
        notes: str = "",
        lost: set[str] | None = None,
    ) -> Figures:
        """`lost` defaults to the sent runs with neither a result nor a dead letter naming them."""
        return cls(
            scenario=scenario,
            sent=len(sent),
            stored=ledger.stored,
            lost=len(ledger.lost(sent) if lost is None else lost),
            duplicated=len(ledger.duplicated) + ledger.results_overwritten,
            provider_calls=provider_calls,
            dead_lettered=len(ledger.dead_letters),
            wall_secs=time.monotonic() - started,
            notes=notes,
        )

    def line(self) -> str:
        return (
            f"{self.scenario}: sent={self.sent} stored={self.stored} lost={self.lost} "
            f"duplicated={self.duplicated} provider_calls={self.provider_calls} "
            f"dead_lettered={self.dead_lettered} wall={self.wall_secs:.1f}s"
            + (f" [{self.notes}]" if self.notes else "")
        )

    def assert_clean(self, ledger: Ledger, sent: set[str]) -> None:
        lost = sorted(ledger.lost(sent))
        assert not lost, f"{len(lost)} jobs lost, e.g. {lost[:5]}"
        duplicated = sorted(ledger.duplicated)
        assert not duplicated, f"{len(duplicated)} runs with more than one result, e.g. {duplicated[:5]}"
        assert ledger.results_overwritten == 0, f"{ledger.results_overwritten} result records were overwritten"
