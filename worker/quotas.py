"""Monthly quotas in the worker (docs/contract.md §9): reserve before the provider, settle once the result is stored.

The rules are `catalog.quota`'s; this module applies them to a `UsageStore`, which holds one value per
`<userId>.<YYYY-MM>` key and changes it only by compare-and-set on the key's revision. The worker's store
is the JetStream key-value bucket (`worker.jetstream.usage`); `replay` uses `MemoryUsageStore`, the same
semantics in one process, for a run that stores nothing.

Every change reads the key, applies the rules, and writes back on the revision it read; a conflict (another
writer got there first) reads again, after a jittered backoff. Nothing read earlier decides anything. The
changes asked for on one key while a write is in flight are applied together in the next read-apply-write
round, so a replica has at most one write in flight per key: a hot key (one user, a thousand runs at once)
costs each replica a write per round, not a conflict per run.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar, cast

import orjson
import structlog

from catalog.quota import (
    USER_ID,
    MonthlyUsage,
    Reservation,
    key_shown,
    release,
    reserve,
    settle,
    usage_key,
    usage_month,
)
from worker.metrics import Metrics
from worker.result import RunResult

__all__ = [
    "Charge",
    "MemoryUsageStore",
    "Quotas",
    "UsageStore",
    "may_hold_reservation",
    "quota_user",
    "stored_billed_tokens",
]

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Jittered exponential backoff after a compare-and-set conflict: full jitter up to base × 2^n, capped.
_BACKOFF_BASE_SECS = 0.001
_BACKOFF_CAP_SECS = 0.05


class UsageStore(Protocol):
    """One JSON value per key, changed only by compare-and-set on the key's revision."""

    @property
    def label(self) -> str:
        """What the store is, for people: "JetStream key-value bucket MASCHINA_USAGE", "in-memory (replay)"."""
        ...

    async def read(self, key: str) -> tuple[MonthlyUsage, int]:
        """The key's value and revision; `(MonthlyUsage(), 0)` when the key holds none."""
        ...

    async def write(self, key: str, usage: MonthlyUsage, revision: int) -> bool:
        """Store `usage` if the key is still at `revision` (0: if it holds none); False when it is not.

        A write whose outcome is unknown (the answer was lost) also returns False: the next read tells.
        """
        ...


class MemoryUsageStore:
    """A usage store in this process's memory, for `replay`: same semantics, nothing shared, gone at exit."""

    label = "in-memory usage store (this process only; the bucket is not read)"

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, int]] = {}
        self._sequence = 0

    async def read(self, key: str) -> tuple[MonthlyUsage, int]:
        stored = self._values.get(key)
        # Kept as the bucket keeps it, JSON, so a value goes through the same reading as the bucket's.
        return (MonthlyUsage(), 0) if stored is None else (MonthlyUsage.from_json(stored[0]), stored[1])

    async def write(self, key: str, usage: MonthlyUsage, revision: int) -> bool:
        current = self._values.get(key)
        if (current[1] if current is not None else 0) != revision:
            return False
        self._sequence += 1
        self._values[key] = (usage.to_json(), self._sequence)
        return True


@dataclass(frozen=True, slots=True)
class Charge:
    """One run's claim on its user's month: its most possible bill, under its tier's quota (None: unlimited)."""

    user_id: str
    run_id: str
    published: datetime
    tier: str
    amount: int
    quota: int | None
    attempt: int = 1


def quota_user(user_id: str | None) -> str | None:
    """The job's userId when it can be a key's user (quotas on: the door refused any other), else None."""
    return user_id if user_id is not None and USER_ID.fullmatch(user_id) else None


def may_hold_reservation(result: RunResult, attempt: int) -> bool:
    """Whether the run of a just-stored result may hold a reservation, so settling must look.

    A first delivery reserves only a run that may cost something and got past the gate and the quota; any
    later delivery may find one left by an earlier delivery.
    """
    return attempt > 1 or (result.status != "rejected" and result.billing.multiplier > 0)


def stored_billed_tokens(body: bytes) -> int:
    """`billing.billedTokens` of a stored result: the run's one billing record."""
    billed = orjson.loads(body)["billing"]["billedTokens"]
    if not isinstance(billed, int) or isinstance(billed, bool) or billed < 0:
        raise ValueError(f"billedTokens is {billed!r}")
    return billed


class _Change:
    """A change waiting for its key's next read-apply-write round, and the caller awaiting its result."""

    __slots__ = ("apply", "future")

    def __init__(self, apply: Callable[[MonthlyUsage], tuple[MonthlyUsage | None, object]]) -> None:
        self.apply = apply
        self.future: asyncio.Future[object] = asyncio.get_running_loop().create_future()


class Quotas:
    """Reserve, settle and read users' monthly usage in a `UsageStore`.

    `stored` says whether a run already has a stored result; a later delivery that had to make a new
    reservation asks it, so a run settled meanwhile by another delivery is not reserved (and billed) again.
    """

    def __init__(
        self,
        store: UsageStore,
        *,
        metrics: Metrics,
        stored: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.store = store
        self._metrics = metrics
        self._stored = stored
        self._pending: dict[str, list[_Change]] = {}
        self._rounds: set[asyncio.Task[None]] = set()

    async def reserve(self, charge: Charge) -> Reservation:
        """Hold the run's most possible bill, reuse the hold it already has, or refuse (quota_exceeded)."""
        started = time.perf_counter()
        key = usage_key(charge.user_id, usage_month(charge.published))
        decision = await self._change(
            key, lambda usage: _new(reserve(usage, charge.run_id, charge.amount, charge.quota))
        )
        # A later delivery whose reservation is new: had another delivery stored and settled the run meanwhile?
        # Then the hold is taken back, and the run's stored result stays its one bill.
        redelivered = decision.new is not None and charge.attempt > 1 and self._stored is not None
        if redelivered and self._stored is not None and await self._stored(charge.run_id):
            await self._change(key, lambda usage: (release(usage, charge.run_id), None))
            log.info("quota_reservation_withdrawn", key=key_shown(key))
        self._metrics.quota_reserve_latency.observe(time.perf_counter() - started)
        if decision.refused:
            self._metrics.child(self._metrics.quota_refusals, charge.tier).inc()
            log.info("quota_exceeded", key=key_shown(key), most_possible_bill=charge.amount, quota=charge.quota)
        return decision

    async def settle(self, user_id: str, published: datetime, run_id: str, billed_tokens: int) -> bool:
        """Move the run's reservation into `billed`, once; False when it holds none (already settled)."""
        started = time.perf_counter()
        key = usage_key(user_id, usage_month(published))
        settled = await self._change(key, lambda usage: _settled(settle(usage, run_id, billed_tokens)))
        self._metrics.quota_settle_latency.observe(time.perf_counter() - started)
        if settled:
            log.debug("quota_settled", key=key_shown(key), billed_tokens=billed_tokens)
        return settled

    async def settle_stored(self, user_id: str | None, published: datetime, run_id: str, body: bytes) -> None:
        """Settle a run with the bill of its stored record `body`, if its user can hold a reservation."""
        user = quota_user(user_id)
        if user is not None:
            await self.settle(user, published, run_id, stored_billed_tokens(body))

    async def usage(self, user_id: str, month: str) -> MonthlyUsage:
        usage, _ = await self.store.read(usage_key(user_id, month))
        return usage

    async def close(self, within: float) -> None:
        """Give the rounds in flight `within` seconds to finish (their callers may be gone), then cancel them.

        A round cut short changes nothing twice: what it wrote is read back by the next delivery of its runs.
        """
        if not self._rounds:
            return
        _, unfinished = await asyncio.wait(set(self._rounds), timeout=within)
        for task in unfinished:
            task.cancel()
        if unfinished:
            log.warning("quota_changes_abandoned", keys=len(unfinished))
            await asyncio.gather(*unfinished, return_exceptions=True)

    async def _change(self, key: str, apply: Callable[[MonthlyUsage], tuple[MonthlyUsage | None, T]]) -> T:
        change = _Change(apply)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = []
            # Its own context: the round serves many jobs, not the one whose change happened to start it.
            task = asyncio.create_task(self._rounds_of(key, pending), context=contextvars.Context())
            self._rounds.add(task)
            task.add_done_callback(self._rounds.discard)
        pending.append(change)
        # The round runs on if this caller is cancelled: a change once asked for is made or failed as a whole.
        return cast(T, await asyncio.shield(change.future))

    async def _rounds_of(self, key: str, pending: list[_Change]) -> None:
        """Read-apply-write rounds on `key` until no change is waiting."""
        batch: list[_Change] = []
        try:
            while pending:
                batch = pending[:]
                pending.clear()
                try:
                    results = await self._round(key, batch)
                except Exception as exc:
                    for change in batch:
                        if not change.future.done():
                            change.future.set_exception(exc)
                    continue
                for change, result in zip(batch, results, strict=True):
                    if not change.future.done():
                        change.future.set_result(result)
        finally:
            del self._pending[key]
            # Cancelled (shutdown): whoever still waits is told so rather than left waiting.
            for change in [*batch, *pending]:
                if not change.future.done():
                    change.future.cancel()

    async def _round(self, key: str, batch: list[_Change]) -> list[object]:
        conflicts = 0
        while True:
            usage, revision = await self.store.read(key)
            results: list[object] = []
            current, changed = usage, False
            for change in batch:
                new, result = change.apply(current)
                if new is not None:
                    current, changed = new, True
                results.append(result)
            if not changed or await self.store.write(key, current, revision):
                return results
            conflicts += 1
            self._metrics.quota_conflicts.inc()
            await asyncio.sleep(random.uniform(0, min(_BACKOFF_CAP_SECS, _BACKOFF_BASE_SECS * 2 ** min(conflicts, 16))))


def _new(decision: Reservation) -> tuple[MonthlyUsage | None, Reservation]:
    return decision.new, decision


def _settled(new: MonthlyUsage | None) -> tuple[MonthlyUsage | None, bool]:
    return new, new is not None
