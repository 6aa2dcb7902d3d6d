"""Max deliveries through the advisories stream: an advisory nobody heard is handled later, and only once."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, RetentionPolicy, StorageType
from structlog.testing import capture_logs

from catalog import default_catalog
from tests.worker.fakes import FakeProvider
from tests.worker.support import (
    ResultWatch,
    StartWorker,
    dead_letters,
    job,
    jobs_left,
    polled,
    publish_job,
    stored_count,
    wait_until_acked,
    worker_settings,
)
from worker.delivery import JobHandler
from worker.door import Door
from worker.embedded import NatsServer
from worker.jetstream.pull import MaxDeliveries
from worker.jetstream.store import DeadLetters, Recorder, ResultStore
from worker.jetstream.topology import advisory_consumer_config, ensure_topology, max_deliveries_subject
from worker.metrics import Metrics
from worker.pipeline import Pipeline
from worker.settings import Settings

pytestmark = pytest.mark.system

# Two deliveries of one second each: a job exhausts its deliveries in about two seconds.
SHORT = {"ack_wait_secs": 1.0, "max_deliver": 2}
ADVISORIES = "MASCHINA_JOBS_ADVISORIES"


async def exhaust_with_no_worker(client: Client, settings: Settings, headers: dict[str, str] | None = None) -> int:
    """Publish a job (with `headers`) that a dying replica takes every time; returns its stream sequence once the
    advisory is stored.

    No worker is connected: the advisory goes only into the advisories stream.
    """
    await ensure_topology(client.jetstream(), settings)
    body = job()
    seq = await publish_job(client, body, headers)
    dying = await client.jetstream().pull_subscribe_bind(settings.consumer, settings.jobs_stream)
    for delivery in range(1, settings.max_deliver + 1):
        [message] = await dying.fetch(1, timeout=3)
        assert message.metadata.num_delivered == delivery
    # The server sends the advisory when it next looks for a job to deliver after the last ack_wait ran out.
    with pytest.raises(TimeoutError):
        await dying.fetch(1, timeout=3)
    await dying.unsubscribe()
    await advisories_stored(client, 1)
    return seq


async def advisories_stored(client: Client, count: int, within: float = 10.0) -> None:
    """The server announces no stored advisory to us (nobody subscribes), so the stream's count is polled."""

    async def stored() -> bool:
        return (await client.jetstream().stream_info(ADVISORIES)).state.messages >= count

    await polled(stored, within=within, what=f"{count} advisories stored")


async def test_advisory_sent_while_no_worker_runs_is_handled_by_the_next_one(
    nats_server: NatsServer, start_worker: StartWorker, client: Client, results: ResultWatch, provider: FakeProvider
) -> None:
    settings = worker_settings(nats_server, **SHORT)
    seq = await exhaust_with_no_worker(client, settings)
    stored_job = await client.jetstream().get_msg("MASCHINA_JOBS", seq=seq)
    assert stored_job.data is not None
    run_id = orjson.loads(stored_job.data)["data"]["runId"]

    worker = await start_worker(**SHORT)
    result = await results.one(run_id)

    assert (result["status"], result["error"]["code"]) == ("failed", "max_deliveries_exceeded")
    assert result["attempt"] == 2
    await wait_until_acked(client)  # deleted from the jobs stream
    [letter] = await dead_letters(client)
    assert letter.data == stored_job.data
    assert letter.headers is not None
    assert letter.headers["Maschina-Dlq-Reason"] == "max_deliveries_exceeded"
    assert letter.headers["Maschina-Stream-Seq"] == str(seq)
    assert await stored_count(client, run_id) == 1
    assert provider.calls == []
    # The advisory was acked: nothing is left for another replica to redo.
    await eventually_acked(client, settings)
    assert worker.metrics.registry.get_sample_value(
        "agent_worker_dead_letters_total", {"reason": "max_deliveries_exceeded"}
    )


async def test_the_same_advisory_twice_gives_one_result_and_one_dead_letter(
    nats_server: NatsServer, start_worker: StartWorker, client: Client, results: ResultWatch
) -> None:
    settings = worker_settings(nats_server, **SHORT)
    await exhaust_with_no_worker(client, settings)
    advisory = await client.jetstream().get_msg(ADVISORIES, seq=1)
    assert advisory.data is not None
    # A redelivery as the stream would make it: the same advisory stored a second time.
    await client.jetstream().publish(max_deliveries_subject(settings.jobs_stream, settings.consumer), advisory.data)
    await advisories_stored(client, 2)

    await start_worker(**SHORT)
    await eventually_acked(client, settings)

    [run_id] = results.by_run
    assert len(results.by_run[run_id]) == 1
    assert len(await dead_letters(client)) == 1
    assert await jobs_left(client) == 0


async def test_concurrent_handling_of_one_advisory_stores_one_of_each(
    nats_server: NatsServer, client: Client, results: ResultWatch
) -> None:
    """Two replicas on one advisory (its ack_wait ran out mid-way): the second delete finds the job gone."""
    settings = worker_settings(nats_server, **SHORT)
    seq = await exhaust_with_no_worker(client, settings)
    handler = _handler(client, settings)

    with capture_logs() as logs:
        await asyncio.gather(handler.handle(seq, 2), handler.handle(seq, 2))
        await handler.handle(seq, 2)  # and once more, after the job is gone

    [run_id] = results.by_run
    assert await stored_count(client, run_id) == 1
    assert len(await dead_letters(client)) == 1
    assert await jobs_left(client) == 0
    assert [event for event in logs if event["event"] == "undelivered_job_already_deleted"]


def _handler(client: Client, settings: Settings) -> MaxDeliveries:
    catalog = default_catalog()
    metrics = Metrics()
    store = ResultStore(client, stream=settings.results_stream, allow_direct=True)
    return MaxDeliveries(
        client,
        jobs_stream=settings.jobs_stream,
        advisories_stream=settings.advisories_stream,
        consumer=advisory_consumer_config(settings),
        handler=JobHandler(
            door=Door(),
            pipeline=Pipeline(catalog=catalog, providers={"anthropic": FakeProvider()}, worker_id="worker-test-2"),
            recorder=Recorder(client, store, metrics=metrics, catalog=catalog),
            dead_letters=DeadLetters(client),
            metrics=metrics,
        ),
    )


async def eventually_acked(client: Client, settings: Settings, within: float = 10.0) -> None:
    """Every stored advisory delivered and acked by the advisory consumer."""
    name = advisory_consumer_config(settings).durable_name
    assert name is not None

    async def acked() -> bool:
        info = await client.jetstream().consumer_info(settings.advisories_stream, name)
        return bool(info.num_pending == 0 and info.num_ack_pending == 0)

    await polled(acked, within=within, what="every advisory acked")


async def test_advisories_stream_and_consumer_are_created_at_start_up(
    start_worker: StartWorker, client: Client
) -> None:
    worker = await start_worker()

    js = client.jetstream()
    stream = await js.stream_info(ADVISORIES)
    consumer = await js.consumer_info(ADVISORIES, "agent-worker-max-deliveries")
    assert stream.config.subjects == ["$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.MASCHINA_JOBS.agent-worker"]
    assert (stream.config.retention, stream.config.storage) == (RetentionPolicy.LIMITS, StorageType.FILE)
    assert stream.config.max_age == 7 * 24 * 3600
    assert consumer.config.ack_policy == AckPolicy.EXPLICIT
    assert (consumer.config.ack_wait, consumer.config.max_deliver) == (30.0, 10)
    assert worker.settings.advisories_stream == ADVISORIES
