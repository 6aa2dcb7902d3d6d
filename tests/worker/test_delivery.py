"""docs/contract.md §7 through a real nats-server: one record per run, dead letters, retries, max deliveries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

import orjson
import pytest
from nats.aio.client import Client

from catalog import default_catalog
from tests.worker.fakes import FakeProvider
from tests.worker.support import (
    Listener,
    ResultWatch,
    StartWorker,
    dead_letters,
    job,
    publish_job,
    stored_count,
    wait_until_acked,
    worker_settings,
)
from worker.contract import JOB_SUBJECT, ErrorCode
from worker.door import Door, Rejected
from worker.embedded import NatsServer
from worker.jetstream.store import ResultStore
from worker.jetstream.topology import ensure_topology
from worker.job import Job
from worker.pipeline import Pipeline
from worker.providers.base import ProviderError
from worker.result import RunResult

pytestmark = pytest.mark.nats


async def a_dead_workers_result(body: dict[str, Any]) -> RunResult:
    """The result a replica computed before it died: made by the same pipeline, by another worker id."""
    verdict = Door().open(orjson.dumps(body))
    assert isinstance(verdict, Job | Rejected)
    pipeline = Pipeline(catalog=default_catalog(), providers={"anthropic": FakeProvider()}, worker_id="worker-dead")
    result = await pipeline.run(verdict)
    assert isinstance(result, RunResult)
    return result


async def test_same_job_published_twice_runs_once_and_replies_twice(
    start_worker: StartWorker, client: Client, results: ResultWatch, provider: FakeProvider
) -> None:
    await start_worker()
    inbox = await Listener("_INBOX.caller.1").open(client)
    body = job(reply_to=inbox.subject)
    run_id = body["data"]["runId"]

    await publish_job(client, body)
    first = await inbox.next()
    await publish_job(client, body)
    second = await inbox.next()

    assert second.data == first.data
    await wait_until_acked(client)
    assert len(provider.calls) == 1
    assert await stored_count(client, run_id) == 1
    assert len(results.by_run[run_id]) == 1


@pytest.mark.system  # a fault scenario (ack_wait expiries): not in make test-fast
async def test_worker_that_died_after_storing_but_before_acking(
    nats_server: NatsServer, start_worker: StartWorker, client: Client, provider: FakeProvider
) -> None:
    settings = worker_settings(nats_server, ack_wait_secs=1.0)
    await ensure_topology(client.jetstream(), settings)
    inbox = await Listener("_INBOX.caller.2").open(client)
    body = job(reply_to=inbox.subject)
    run_id = body["data"]["runId"]
    await publish_job(client, body)
    # The replica that died: it took delivery 1, stored its result, and never acked.
    dying = await client.jetstream().pull_subscribe_bind("agent-worker", "MASCHINA_JOBS")
    [taken] = await dying.fetch(1, timeout=2)
    stored = await ResultStore(client, stream="MASCHINA_RESULTS", allow_direct=True).store(
        await a_dead_workers_result(body)
    )
    assert stored.fresh
    await dying.unsubscribe()

    worker = await start_worker(ack_wait_secs=1.0)
    resent = await inbox.next(within=5)

    assert resent.data == stored.body
    assert orjson.loads(resent.data)["workerId"] == "worker-dead"
    await wait_until_acked(client)
    assert provider.calls == []
    assert await stored_count(client, run_id) == 1
    assert taken.metadata.num_delivered == 1
    assert worker.metrics.registry.get_sample_value("agent_worker_duplicate_jobs_total") == 1
    assert worker.metrics.registry.get_sample_value("agent_worker_redeliveries_total") == 1


async def test_a_second_record_is_refused_after_the_duplicate_window(nats_server: NatsServer, client: Client) -> None:
    """Nats-Msg-Id de-duplicates only within the window; the store still refuses a second record after it."""
    window = 0.3
    await client.jetstream().add_stream(
        name="MASCHINA_RESULTS", subjects=["maschina.results.>"], duplicate_window=window
    )
    await ensure_topology(client.jetstream(), worker_settings(nats_server))
    store = ResultStore(client, stream="MASCHINA_RESULTS", allow_direct=False)
    first = await a_dead_workers_result(job())
    second = first.model_copy(update={"worker_id": "worker-late"})
    assert (await store.store(first)).fresh

    await asyncio.sleep(window * 2)  # let the duplicate window pass: time itself is what is tested
    again = await store.store(second)

    assert not again.fresh
    assert again.body == first.to_json()
    assert await stored_count(client, first.run_id) == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xef\xbb\xbf{}", "not_json"),
        (b'{"data": {"runId": NaN}}', "not_json"),
        (b"[1, 2]", "not_object"),
        (b'{"id": "x", "data": {"tier": "m5"}}', "no_run_id"),
        (b'{"runId": "has space"}', "bad_run_id"),
    ],
)
async def test_malformed_jobs_are_dead_lettered_with_the_original_body(
    start_worker: StartWorker, client: Client, results: ResultWatch, raw: bytes, reason: str
) -> None:
    worker = await start_worker()
    seq = await publish_job(client, raw)
    await wait_until_acked(client)

    [letter] = await dead_letters(client)
    assert letter.data == raw
    assert letter.headers is not None
    assert letter.headers["Maschina-Dlq-Reason"] == reason
    assert letter.headers["Maschina-Dlq-Detail"]
    assert letter.headers["Maschina-Original-Subject"] == JOB_SUBJECT
    assert letter.headers["Maschina-Stream-Seq"] == str(seq)
    assert results.by_run == {}
    assert worker.metrics.registry.get_sample_value("agent_worker_dead_letters_total", {"reason": reason}) == 1


def signed(raw: bytes, key: bytes) -> dict[str, str]:
    return {"Maschina-Signature": "sha256=" + hmac.new(key, raw, hashlib.sha256).hexdigest().upper()}


async def test_signing_key_requires_a_valid_signature(
    start_worker: StartWorker, client: Client, results: ResultWatch
) -> None:
    key = b"s3cret"
    await start_worker(signing_key=key.decode())
    good, forged, unsigned = job(), job(), job()

    await publish_job(client, orjson.dumps(good), signed(orjson.dumps(good), key))
    await publish_job(client, orjson.dumps(forged), signed(orjson.dumps(forged), b"wrong"))
    await publish_job(client, unsigned)

    assert (await results.one(good["data"]["runId"]))["status"] == "completed"
    await wait_until_acked(client)
    letters = await dead_letters(client)
    assert [m.headers["Maschina-Dlq-Reason"] for m in letters if m.headers] == ["bad_signature", "bad_signature"]
    assert sorted(orjson.loads(m.data)["data"]["runId"] for m in letters) == sorted(
        [forged["data"]["runId"], unsigned["data"]["runId"]]
    )
    assert set(results.by_run) == {good["data"]["runId"]}


async def test_without_a_signing_key_signatures_are_not_checked(
    start_worker: StartWorker, client: Client, results: ResultWatch
) -> None:
    await start_worker()
    body = job()
    await publish_job(client, orjson.dumps(body), {"Maschina-Signature": "sha256=00"})

    assert (await results.one(body["data"]["runId"]))["status"] == "completed"


@pytest.mark.system  # a fault scenario (ack_wait expiries): not in make test-fast
async def test_job_longer_than_ack_wait_is_kept_alive_not_redelivered(
    start_worker: StartWorker, client: Client, results: ResultWatch
) -> None:
    gate = asyncio.Event()
    slow = FakeProvider(gate=gate)
    worker = await start_worker(providers={"anthropic": slow}, ack_wait_secs=1.0)
    body = job()
    await publish_job(client, body)
    await slow.wait_for_calls(1)

    await asyncio.sleep(3.0)  # three ack_waits: the job must still be ours, thanks to in_progress
    gate.set()
    result = await results.one(body["data"]["runId"])

    assert result["status"] == "completed"
    assert result["attempt"] == 1
    assert len(slow.calls) == 1
    assert worker.metrics.registry.get_sample_value("agent_worker_redeliveries_total") == 0
    await wait_until_acked(client)


async def test_retryable_failure_is_nakked_then_fails_retryable_on_the_last_delivery(
    start_worker: StartWorker, client: Client, results: ResultWatch
) -> None:
    overloaded = [ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, "overloaded", retryable=True) for _ in range(3)]
    flaky = FakeProvider(errors=overloaded)
    worker = await start_worker(providers={"anthropic": flaky}, max_deliver=3)
    body = job()
    started = time.monotonic()
    await publish_job(client, body)

    result = await results.one(body["data"]["runId"])

    assert result["status"] == "failed"
    assert result["error"] == {"code": "provider_unavailable", "message": "overloaded", "retryable": True}
    assert result["attempt"] == 3
    assert len(flaky.calls) == 3
    # The nak delays grow with the delivery count: 0.2 s after the first, 0.4 s after the second.
    assert time.monotonic() - started >= 0.6
    naks = worker.metrics.registry.get_sample_value("agent_worker_naks_total", {"code": "provider_unavailable"})
    assert naks == 2
    await wait_until_acked(client)


@pytest.mark.system  # a fault scenario (ack_wait expiries): not in make test-fast
async def test_job_out_of_deliveries_is_dead_lettered_and_fails(
    nats_server: NatsServer, start_worker: StartWorker, client: Client, results: ResultWatch, provider: FakeProvider
) -> None:
    settings = {"ack_wait_secs": 1.0, "max_deliver": 2}
    await ensure_topology(client.jetstream(), worker_settings(nats_server, **settings))
    inbox = await Listener("_INBOX.caller.3").open(client)
    body = job(reply_to=inbox.subject)
    seq = await publish_job(client, body)
    # A replica that dies mid-job, twice: each takes the job and never answers.
    dying = await client.jetstream().pull_subscribe_bind("agent-worker", "MASCHINA_JOBS")
    [first] = await dying.fetch(1, timeout=2)
    [last] = await dying.fetch(1, timeout=5)
    assert (first.metadata.num_delivered, last.metadata.num_delivered) == (1, 2)
    await dying.unsubscribe()

    # A healthy replica is connected when the last delivery's ack_wait runs out.
    worker = await start_worker(**settings)
    result = await results.one(body["data"]["runId"])

    assert result["status"] == "failed"
    assert result["error"]["code"] == "max_deliveries_exceeded"
    assert result["error"]["retryable"] is False
    assert result["attempt"] == 2
    assert orjson.loads((await inbox.next()).data) == result
    await wait_until_acked(client)  # deleted from the jobs stream, not left to linger
    [letter] = await dead_letters(client)
    assert letter.data == orjson.dumps(body)
    assert letter.headers is not None
    assert letter.headers["Maschina-Dlq-Reason"] == "max_deliveries_exceeded"
    assert letter.headers["Maschina-Stream-Seq"] == str(seq)
    assert provider.calls == []
    dead = worker.metrics.registry.get_sample_value(
        "agent_worker_dead_letters_total", {"reason": "max_deliveries_exceeded"}
    )
    assert dead == 1


@pytest.mark.system  # a fault scenario (ack_wait expiries): not in make test-fast
async def test_job_out_of_deliveries_with_a_stored_result_is_only_removed(
    nats_server: NatsServer, start_worker: StartWorker, client: Client, results: ResultWatch, provider: FakeProvider
) -> None:
    settings = {"ack_wait_secs": 1.0, "max_deliver": 1}
    await ensure_topology(client.jetstream(), worker_settings(nats_server, **settings))
    body = job()
    await publish_job(client, body)
    # The replica that took the only delivery stored its result and died before acking.
    dying = await client.jetstream().pull_subscribe_bind("agent-worker", "MASCHINA_JOBS")
    await dying.fetch(1, timeout=2)
    stored = await ResultStore(client, stream="MASCHINA_RESULTS", allow_direct=True).store(
        await a_dead_workers_result(body)
    )
    await dying.unsubscribe()

    await start_worker(**settings)
    await wait_until_acked(client)

    assert await dead_letters(client) == []
    assert await stored_count(client, body["data"]["runId"]) == 1
    # Only the dead replica's record was ever published on the results subjects: no failed result followed it.
    assert results.by_run[body["data"]["runId"]] == [orjson.loads(stored.body)]
    assert provider.calls == []
