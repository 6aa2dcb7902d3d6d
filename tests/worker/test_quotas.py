"""Monthly quotas against a real nats-server and its key-value bucket (docs/contract.md §9)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from nats.aio.client import Client
from nats.js.api import StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from catalog import default_catalog
from catalog.quota import MonthlyUsage, usage_key, usage_month
from tests.worker.fakes import FakeProvider
from tests.worker.support import (
    ResultWatch,
    StartWorker,
    job,
    new_run_id,
    publish_job,
    wait_until_acked,
    worker_settings,
)
from tests.worker.test_max_deliveries import exhaust_with_no_worker
from worker.embedded import NatsServer
from worker.jetstream.store import result_subject
from worker.jetstream.topology import ensure_topology
from worker.jetstream.usage import BucketUsageStore, UsageTooLargeError, ensure_usage_bucket, published_at
from worker.service import Worker

pytestmark = pytest.mark.nats

BUCKET = "MASCHINA_USAGE"
QUOTAS = {"quotas": "on"}
USER = "user-quota-1"
# The sample job (tests.worker.support.job) on Sonnet (×3): system prompt 25 bytes + message 29 + 64 = 118
# input, 4096 output; its most possible bill is (118 + 4096) × 3.
SAMPLE_HOLD = (25 + 29 + 64 + 4096) * 3
M5_QUOTA = 2_000_000
# FakeProvider's default usage, 812 in and 240 out, on Sonnet.
SAMPLE_BILL = (812 + 240) * 3


async def bucket(client: Client) -> KeyValue:
    return await client.jetstream().key_value(BUCKET)


async def value(client: Client, key: str) -> MonthlyUsage | None:
    try:
        entry = await (await bucket(client)).get(key)
    except KeyNotFoundError:
        return None
    return MonthlyUsage.from_json(entry.value or b"")


async def seed(client: Client, key: str, usage: MonthlyUsage) -> None:
    await (await bucket(client)).put(key, usage.to_json())


def this_month_key(user: str = USER) -> str:
    # A job published now counts in this month; a test straddling midnight UTC at a month's end could miss.
    return usage_key(user, usage_month(datetime.now(UTC)))


async def run_one(client: Client, results: ResultWatch, **data: Any) -> dict[str, Any]:
    body = job(userId=USER, **data)
    await publish_job(client, body)
    return await results.one(body["data"]["runId"])


async def test_the_bucket_is_created_as_the_contract_says_and_start_up_is_idempotent(
    start_worker: StartWorker, client: Client
) -> None:
    await asyncio.gather(start_worker(**QUOTAS), start_worker(**QUOTAS, worker_id="worker-test-2"))
    status = await (await bucket(client)).status()
    config = status.stream_info.config
    assert (status.history, status.ttl or 0, config.storage, config.num_replicas) == (1, 0, StorageType.FILE, 1)
    assert config.name == f"KV_{BUCKET}"


async def test_off_by_default_no_bucket(start_worker: StartWorker, client: Client) -> None:
    await start_worker()
    with pytest.raises(BucketNotFoundError):
        await bucket(client)


async def test_a_run_reserves_then_settles_its_stored_bill(
    start_worker: StartWorker, client: Client, results: ResultWatch, provider: FakeProvider
) -> None:
    worker = await start_worker(**QUOTAS)
    gate = provider.gate = asyncio.Event()
    body = job(userId=USER)
    await publish_job(client, body)
    await provider.wait_for_calls(1)
    # While the provider works, the run holds its most possible bill.
    held = await value(client, this_month_key())
    assert held == MonthlyUsage(0, {body["data"]["runId"]: SAMPLE_HOLD})
    gate.set()
    result = await results.one(body["data"]["runId"])
    await wait_until_acked(client)
    assert result["status"] == "completed"
    assert result["billing"]["billedTokens"] == SAMPLE_BILL
    assert await value(client, this_month_key()) == MonthlyUsage(SAMPLE_BILL, {})
    registry = worker.metrics.registry
    assert registry.get_sample_value("agent_worker_quota_reserve_seconds_count") == 1
    assert registry.get_sample_value("agent_worker_quota_settle_seconds_count") == 1


async def test_refused_when_it_would_not_fit_and_the_provider_is_not_called(
    start_worker: StartWorker, client: Client, results: ResultWatch, provider: FakeProvider
) -> None:
    worker = await start_worker(**QUOTAS)
    # Exactly room for one sample run: it fits (at the quota is allowed), the next one does not.
    await seed(client, this_month_key(), MonthlyUsage(M5_QUOTA - SAMPLE_HOLD, {}))
    first = await run_one(client, results)
    assert first["status"] == "completed"
    second = await run_one(client, results)
    assert second["status"] == "rejected"
    assert second["error"]["code"] == "quota_exceeded"
    assert second["error"]["retryable"] is False
    assert (second["model"], second["provider"], second["billing"]["billedTokens"]) == (None, None, 0)
    assert len(provider.calls) == 1
    await wait_until_acked(client)
    # The refused run left nothing; the completed one is billed its real usage.
    assert await value(client, this_month_key()) == MonthlyUsage(M5_QUOTA - SAMPLE_HOLD + SAMPLE_BILL, {})
    assert worker.metrics.registry.get_sample_value("agent_worker_quota_refusals_total", {"tier": "m5"}) == 1


async def test_a_reservation_present_is_reused_not_added_twice(
    start_worker: StartWorker, client: Client, results: ResultWatch
) -> None:
    await start_worker(**QUOTAS)
    run_id = new_run_id()
    # An earlier delivery's hold fills the quota to the brim: reusing it is not refusing it.
    await seed(client, this_month_key(), MonthlyUsage(M5_QUOTA - SAMPLE_HOLD, {run_id: SAMPLE_HOLD}))
    await publish_job(client, job(run_id, userId=USER))
    assert (await results.one(run_id))["status"] == "completed"
    await wait_until_acked(client)
    assert await value(client, this_month_key()) == MonthlyUsage(M5_QUOTA - SAMPLE_HOLD + SAMPLE_BILL, {})


async def test_a_stored_result_settles_a_reservation_left_behind_once(
    start_worker: StartWorker, client: Client, results: ResultWatch, provider: FakeProvider
) -> None:
    await start_worker(**QUOTAS)
    run_id = new_run_id()
    # As if a replica stored the result and stopped before settling: record stored, reservation present.
    stored = {"version": 1, "runId": run_id, "status": "completed", "billing": {"billedTokens": 777}}
    await client.jetstream().publish(result_subject(run_id), orjson.dumps(stored), headers={"Nats-Msg-Id": run_id})
    await seed(client, this_month_key(), MonthlyUsage(100, {run_id: SAMPLE_HOLD}))
    for _ in range(2):  # the job again, then once more: the second finds nothing left to settle
        await publish_job(client, job(run_id, userId=USER))
        await wait_until_acked(client)
        assert await value(client, this_month_key()) == MonthlyUsage(100 + 777, {})
    assert provider.calls == []


async def test_free_runs_are_never_refused_and_leave_nothing(
    nats_server: NatsServer, client: Client, results: ResultWatch
) -> None:
    ollama = FakeProvider("ollama")
    worker = Worker(worker_settings(nats_server, **QUOTAS), providers={"ollama": ollama})
    await worker.start()
    try:
        # The access tier's quota is 0, and its models bill nothing.
        result = await run_one(client, results, tier="access", model="ollama/llama3.2")
        assert result["status"] == "completed"
        await wait_until_acked(client)
        assert await value(client, this_month_key()) is None
    finally:
        await worker.stop()


async def test_unlimited_tiers_are_counted_and_never_refused(
    start_worker: StartWorker, client: Client, results: ResultWatch
) -> None:
    await start_worker(**QUOTAS)
    await seed(client, this_month_key(), MonthlyUsage(10**15, {}))
    result = await run_one(client, results, tier="enterprise", model="claude-sonnet-4-6")
    assert result["status"] == "completed"
    await wait_until_acked(client)
    assert await value(client, this_month_key()) == MonthlyUsage(10**15 + SAMPLE_BILL, {})


async def test_with_quotas_on_a_user_id_must_be_a_key_token(
    start_worker: StartWorker, client: Client, results: ResultWatch
) -> None:
    await start_worker(**QUOTAS)
    body = job(userId="user 1.2026-01")
    await publish_job(client, body)
    result = await results.one(body["data"]["runId"])
    assert (result["status"], result["error"]["code"]) == ("rejected", "invalid_job")
    assert "userId must be 1 to 128 letters" in result["error"]["message"]


async def test_the_month_is_read_from_the_real_message_timestamp(client: Client, nats_server: NatsServer) -> None:
    settings = worker_settings(nats_server)
    await ensure_topology(client.jetstream(), settings)
    seq = await publish_job(client, job())
    stored = await client.jetstream().get_msg(settings.jobs_stream, seq)
    subscription = await client.jetstream().pull_subscribe_bind(settings.consumer, settings.jobs_stream)
    [first] = await subscription.fetch(1, timeout=5)
    await first.nak()
    [second] = await subscription.fetch(1, timeout=5)
    assert second.metadata.num_delivered == 2
    # Every delivery carries the first publication's timestamp, to the microsecond the stream reports.
    assert published_at(first) == published_at(second)
    assert stored.time is not None
    assert abs((published_at(first) - stored.time).total_seconds()) < 1e-6
    assert usage_month(published_at(first)) == usage_month(stored.time)
    await second.ack()
    await subscription.unsubscribe()


@pytest.mark.system  # a fault scenario (ack_wait expiries): not in make test-fast
async def test_max_deliveries_exceeded_settles_a_reservation_left_behind(
    nats_server: NatsServer, client: Client, results: ResultWatch
) -> None:
    settings = worker_settings(nats_server, ack_wait_secs=1.0, max_deliver=2, **QUOTAS)
    seq = await exhaust_with_no_worker(client, settings)
    message = await client.jetstream().get_msg(settings.jobs_stream, seq)
    assert message.time is not None
    run_id, user = (orjson.loads(message.data or b"")["data"][name] for name in ("runId", "userId"))
    key = usage_key(user, usage_month(message.time))
    # The deliveries that ran out had reserved (as a replica killed mid-job leaves it).
    await ensure_usage_bucket(client.jetstream(), settings)
    await seed(client, key, MonthlyUsage(5, {run_id: SAMPLE_HOLD}))
    worker = Worker(settings, providers={"anthropic": FakeProvider()}, catalog=default_catalog())
    await worker.start()
    try:
        result = await results.one(run_id)
        assert (result["error"]["code"], result["billing"]["billedTokens"]) == ("max_deliveries_exceeded", 0)
        await wait_until_acked(client)
        assert await value(client, key) == MonthlyUsage(5, {})
    finally:
        await worker.stop()


async def test_a_value_too_big_for_one_message_is_refused_before_it_is_sent(
    nats_server: NatsServer, client: Client
) -> None:
    settings = worker_settings(nats_server, **QUOTAS)
    await ensure_topology(client.jetstream(), settings)
    kv = await ensure_usage_bucket(client.jetstream(), settings)
    store = BucketUsageStore(kv, BUCKET, max_payload=lambda: client.max_payload)
    crowded = MonthlyUsage(0, {f"run-{n:07d}": 1_000 for n in range(client.max_payload // 10)})
    with pytest.raises(UsageTooLargeError, match=r"runs hold a reservation on user-1\.2026-03"):
        await store.write("user-1.2026-03", crowded, 0)
    # Nothing was sent, so the server had nothing to refuse: the connection is still good.
    assert client.is_connected
    assert await store.write("user-1.2026-03", MonthlyUsage(0, {"run-1": 1}), 0)


async def test_a_damaged_value_holds_the_users_runs_until_it_is_fixed(
    start_worker: StartWorker, client: Client, results: ResultWatch, provider: FakeProvider
) -> None:
    await start_worker(**QUOTAS, max_deliver=20)
    await (await bucket(client)).put(this_month_key(), b'{"billed": "a lot"}')
    body = job(userId=USER)
    run_id = body["data"]["runId"]
    await publish_job(client, body)
    # Not refused, not run, not failed: handed back and retried while the value cannot be read.
    with pytest.raises(TimeoutError):
        await results.one(run_id, within=1.0)
    assert provider.calls == []
    await seed(client, this_month_key(), MonthlyUsage(10, {}))
    assert (await results.one(run_id))["status"] == "completed"
    await wait_until_acked(client)
    assert await value(client, this_month_key()) == MonthlyUsage(10 + SAMPLE_BILL, {})
