"""Start-up topology: created when missing, idempotent under concurrent replicas, never rewritten."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy
from structlog.testing import capture_logs

from tests.worker.support import StartWorker, worker_settings
from worker.embedded import NatsServer
from worker.jetstream.topology import ensure_topology

pytestmark = pytest.mark.nats


async def test_many_replicas_starting_at_once_create_one_topology(nats_server: NatsServer) -> None:
    settings = worker_settings(nats_server)
    clients = [await nats.connect(nats_server.url) for _ in range(6)]
    try:
        with capture_logs() as logs:
            topologies = await asyncio.gather(*(ensure_topology(c.jetstream(), settings) for c in clients))
        js = clients[0].jetstream()
        jobs = await js.stream_info("MASCHINA_JOBS")
        results = await js.stream_info("MASCHINA_RESULTS")
        dlq = await js.stream_info("MASCHINA_DLQ")
        consumer = await js.consumer_info("MASCHINA_JOBS", "agent-worker")
    finally:
        for c in clients:
            await c.close()

    assert [event for event in logs if event["log_level"] == "warning"] == []
    assert all(t.consumer.max_deliver == 3 for t in topologies)
    assert jobs.config.retention == RetentionPolicy.WORK_QUEUE
    assert jobs.config.subjects == ["maschina.jobs.>"]
    assert jobs.config.duplicate_window == 120
    assert results.config.retention == RetentionPolicy.LIMITS
    assert results.config.duplicate_window >= 7200
    assert results.config.allow_direct
    assert dlq.config.subjects == ["maschina.dlq.agent.execute"]
    assert dlq.config.max_age == 30 * 24 * 3600
    assert consumer.config.ack_policy == AckPolicy.EXPLICIT
    assert consumer.config.filter_subjects == ["maschina.jobs.agent.agent.execute"]
    assert (consumer.config.ack_wait, consumer.config.max_ack_pending) == (5.0, 10_000)


async def test_existing_consumer_is_used_as_it_is_and_the_difference_logged(
    start_worker: StartWorker, client: Client
) -> None:
    js = client.jetstream()
    await js.add_stream(name="MASCHINA_JOBS", subjects=["maschina.jobs.>"], retention=RetentionPolicy.WORK_QUEUE)
    ops = ConsumerConfig(
        durable_name="agent-worker",
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=60,
        max_deliver=7,
        filter_subject="maschina.jobs.agent.agent.execute",
    )
    await js.add_consumer("MASCHINA_JOBS", ops)

    with capture_logs() as logs:
        await start_worker(ack_wait_secs=5.0, max_deliver=3)

    consumer = await js.consumer_info("MASCHINA_JOBS", "agent-worker")
    assert (consumer.config.ack_wait, consumer.config.max_deliver) == (60.0, 7)
    [warning] = [event for event in logs if event["event"] == "existing_consumer_differs"]
    assert {"ack_wait", "max_deliver"} <= set(warning["differences"])
    stream_warnings = [event for event in logs if event["event"] == "existing_stream_differs"]
    assert stream_warnings == []  # the stream was made as we would have made it


async def test_existing_streams_lacking_what_an_api_relies_on_are_named_at_start_up(
    start_worker: StartWorker, client: Client
) -> None:
    """An ops-made jobs stream with a short duplicate window and a results stream without direct get: both named."""
    js = client.jetstream()
    await js.add_stream(
        name="MASCHINA_JOBS", subjects=["maschina.jobs.>"], retention=RetentionPolicy.WORK_QUEUE, duplicate_window=10
    )
    await js.add_stream(name="MASCHINA_RESULTS", subjects=["maschina.results.>"], duplicate_window=7200)

    with capture_logs() as logs:
        await start_worker()

    warnings = {event["event"]: event for event in logs if event["log_level"] == "warning"}
    assert warnings["jobs_duplicate_window_short"]["stream"] == "MASCHINA_JOBS"
    assert (
        warnings["jobs_duplicate_window_short"]["duplicate_window"],
        warnings["jobs_duplicate_window_short"]["wanted"],
    ) == (10, 120)
    assert warnings["results_allow_direct_off"]["stream"] == "MASCHINA_RESULTS"
    assert "results_duplicate_window_short" not in warnings
    # Used as they are, never rewritten.
    assert (await js.stream_info("MASCHINA_JOBS")).config.duplicate_window == 10
    assert not (await js.stream_info("MASCHINA_RESULTS")).config.allow_direct
