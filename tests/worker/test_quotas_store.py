"""`worker.quotas.Quotas` on the in-memory store: months, compare-and-set conflicts and hot keys."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from catalog.quota import MonthlyUsage
from worker.metrics import Metrics
from worker.quotas import Charge, MemoryUsageStore, Quotas
from worker.settings import Settings, SettingsError

pytestmark = pytest.mark.unit

MARCH = datetime(2026, 3, 31, 23, 59, 59, 999_999, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)


def charge(run_id: str, published: datetime = MARCH, amount: int = 100, quota: int | None = 1_000) -> Charge:
    return Charge("user-1", run_id, published, "m5", amount, quota)


async def test_jobs_first_published_in_two_months_count_in_two_keys() -> None:
    quotas = Quotas(MemoryUsageStore(), metrics=Metrics())
    await quotas.reserve(charge("run-march", MARCH))
    await quotas.reserve(charge("run-april", APRIL))
    assert await quotas.usage("user-1", "2026-03") == MonthlyUsage(0, {"run-march": 100})
    assert await quotas.usage("user-1", "2026-04") == MonthlyUsage(0, {"run-april": 100})
    # Settling goes by the job's own publication month, whenever it happens.
    assert await quotas.settle("user-1", MARCH, "run-march", 40)
    assert await quotas.settle("user-1", APRIL, "run-april", 60)
    assert await quotas.usage("user-1", "2026-03") == MonthlyUsage(40, {})
    assert await quotas.usage("user-1", "2026-04") == MonthlyUsage(60, {})


class ConflictingStore(MemoryUsageStore):
    """Another writer changes the key before each of our first `conflicts` writes."""

    def __init__(self, conflicts: int) -> None:
        super().__init__()
        self.conflicts = conflicts
        self.writes = 0

    async def write(self, key: str, usage: MonthlyUsage, revision: int) -> bool:
        self.writes += 1
        if self.conflicts:
            self.conflicts -= 1
            current, current_revision = await self.read(key)
            # The other writer billed 10 more: our decision must be made again on its value.
            await super().write(key, MonthlyUsage(current.billed + 10, current.reserved), current_revision)
        return await super().write(key, usage, revision)


async def test_a_conflict_reads_again_and_decides_on_the_new_value() -> None:
    store = ConflictingStore(conflicts=3)
    metrics = Metrics()
    quotas = Quotas(store, metrics=metrics)
    # 900 of 1,000 left after the other writer's 30: 100 fits exactly at the quota, 101 would not.
    await quotas.reserve(charge("run-a", amount=870))
    decision = await quotas.reserve(charge("run-b", amount=100))
    assert not decision.refused
    assert await quotas.usage("user-1", "2026-03") == MonthlyUsage(30, {"run-a": 870, "run-b": 100})
    assert metrics.registry.get_sample_value("agent_worker_quota_cas_conflicts_total") == 3
    assert (await quotas.reserve(charge("run-c", amount=1))).refused


async def test_many_changes_on_one_key_share_writes_and_stay_exact() -> None:
    store = ConflictingStore(conflicts=0)
    quotas = Quotas(store, metrics=Metrics())
    decisions = await asyncio.gather(*(quotas.reserve(charge(f"run-{n}", amount=10)) for n in range(250)))
    # 100 fit in 1,000, exactly; the others are refused; far fewer writes than changes.
    assert sum(not decision.refused for decision in decisions) == 100
    assert store.writes < 10
    settled = await asyncio.gather(*(quotas.settle("user-1", MARCH, f"run-{n}", 3) for n in range(250)))
    assert sum(settled) == 100
    assert await quotas.usage("user-1", "2026-03") == MonthlyUsage(300, {})


async def test_a_failing_store_fails_the_callers_and_the_key_recovers() -> None:
    class Broken(MemoryUsageStore):
        fail = True

        async def read(self, key: str) -> tuple[MonthlyUsage, int]:
            if self.fail:
                raise OSError("down")
            return await super().read(key)

    store = Broken()
    quotas = Quotas(store, metrics=Metrics())
    with pytest.raises(OSError, match="down"):
        await quotas.reserve(charge("run-a"))
    store.fail = False
    assert not (await quotas.reserve(charge("run-a"))).refused


@pytest.mark.parametrize(("name", "value"), [("WORKER_QUOTAS", "yes"), ("WORKER_USAGE_BUCKET", "usage.bucket")])
def test_a_bad_quota_setting_stops_start_up_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_quotas_are_off_by_default() -> None:
    settings = Settings.from_env({})
    assert (settings.quotas_on, settings.usage_bucket) == (False, "MASCHINA_USAGE")
    assert Settings.from_env({"WORKER_QUOTAS": "on"}).quotas_on


async def test_closing_waits_for_changes_in_flight_then_gives_up_on_a_store_that_hangs() -> None:
    class Hanging(MemoryUsageStore):
        reading = asyncio.Event()

        async def read(self, key: str) -> tuple[MonthlyUsage, int]:
            self.reading.set()
            await asyncio.Event().wait()  # NATS down: the bucket's reads wait out the outage
            raise AssertionError("unreachable")

    store = Hanging()
    quotas = Quotas(store, metrics=Metrics())
    waiting = asyncio.create_task(quotas.reserve(charge("run-a")))
    await store.reading.wait()
    async with asyncio.timeout(5):
        await quotas.close(within=0.1)
    with pytest.raises(asyncio.CancelledError):
        await waiting
