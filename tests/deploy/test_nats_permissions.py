"""deploy/nats/nats-server.conf gives each user exactly what it needs: shown against a real nats-server."""

from __future__ import annotations

import asyncio
import json

import pytest
from nats.js.api import ConsumerConfig

from catalog.quota import MonthlyUsage
from tests.deploy.support import Connect, Identities, Session
from worker.contract import DLQ_STREAM, DLQ_SUBJECT, RESULTS_SUBJECT_PREFIX
from worker.jetstream.store import Inbox, LastGets
from worker.jetstream.topology import advisory_consumer_config, ensure_topology, max_deliveries_subject
from worker.jetstream.usage import BucketUsageStore, ensure_usage_bucket
from worker.settings import Settings

pytestmark = pytest.mark.nats

SETTINGS = Settings.from_env({})
JOB_SUBJECT = SETTINGS.subjects[0]
NEXT = f"$JS.API.CONSUMER.MSG.NEXT.{SETTINGS.jobs_stream}"
RESULT = b'{"runId": "run-1", "status": "completed"}'
MAX_DELIVERIES = max_deliveries_subject(SETTINGS.jobs_stream, SETTINGS.consumer)
ADVISORY_CONSUMER = str(advisory_consumer_config(SETTINGS).durable_name)


async def _set_up(connect: Connect, identities: Identities) -> tuple[Session, Session]:
    """The worker creates the streams and its consumer itself, as at start-up; then the API may publish."""
    worker = await connect(identities.worker)
    await ensure_topology(worker.nc.jetstream(), SETTINGS)
    await worker.accepted()
    api = await connect(identities.api)
    return worker, api


async def test_worker_start_up_is_allowed_and_idempotent(connect: Connect, identities: Identities) -> None:
    worker, _ = await _set_up(connect, identities)
    # A second replica starting finds everything in place and reads it.
    topology = await ensure_topology(worker.nc.jetstream(), SETTINGS)
    assert topology.consumer.durable_name == SETTINGS.consumer
    assert topology.results_allow_direct
    await worker.accepted()


async def test_worker_keeps_monthly_usage_in_its_bucket(connect: Connect, identities: Identities) -> None:
    worker, _ = await _set_up(connect, identities)
    quotas = SETTINGS.model_copy(update={"quotas": "on"})
    js = worker.nc.jetstream()
    await ensure_usage_bucket(js, quotas)
    kv = await ensure_usage_bucket(js, quotas)  # a second replica starting
    store = BucketUsageStore(kv, quotas.usage_bucket)
    assert await store.read("user-1.2026-03") == (MonthlyUsage(), 0)
    assert await store.write("user-1.2026-03", MonthlyUsage(0, {"run-1": 10}), 0)
    usage, revision = await store.read("user-1.2026-03")
    assert usage == MonthlyUsage(0, {"run-1": 10})
    assert await store.write("user-1.2026-03", MonthlyUsage(7, {}), revision)
    assert not await store.write("user-1.2026-03", MonthlyUsage(8, {}), revision)
    await worker.accepted()


async def test_worker_pulls_acks_stores_results_and_dead_letters(connect: Connect, identities: Identities) -> None:
    worker, api = await _set_up(connect, identities)
    js = worker.nc.jetstream()

    ack = await api.nc.jetstream().publish(JOB_SUBJECT, b'{"runId": "run-1"}')
    assert ack.stream == SETTINGS.jobs_stream

    pull = await js.pull_subscribe_bind(SETTINGS.consumer, stream=SETTINGS.jobs_stream)
    (job,) = await pull.fetch(1, timeout=5)
    await job.in_progress()

    reply_inbox = api.nc.new_inbox()
    replies = await api.nc.subscribe(reply_inbox)
    await api.accepted()
    result_subject = f"{RESULTS_SUBJECT_PREFIX}run-1"
    stored = await js.publish(result_subject, RESULT, stream=SETTINGS.results_stream, headers={"Nats-Msg-Id": "run-1"})
    assert stored.duplicate is None
    await worker.nc.publish(reply_inbox, RESULT)
    assert (await replies.next_msg(timeout=5)).data == RESULT
    # The stored-result check, both ways the worker may read it: a batched direct get, or the message-get API.
    assert await LastGets(worker.nc, Inbox(worker.nc), SETTINGS.results_stream).last(result_subject) == RESULT
    assert (await js.get_last_msg(SETTINGS.results_stream, result_subject)).data == RESULT
    dead = await js.publish(DLQ_SUBJECT, b"not json", stream=DLQ_STREAM, headers={"Maschina-Dlq-Reason": "not_json"})
    assert dead.stream == DLQ_STREAM
    await job.ack_sync()
    await worker.accepted()
    await pull.unsubscribe()


async def test_worker_handles_max_deliveries(connect: Connect, identities: Identities) -> None:
    """The server stores the advisory in the account's advisories stream; the worker may pull and ack it there,
    read the job by sequence and delete it from the queue."""
    worker, api = await _set_up(connect, identities)
    js = worker.nc.jetstream()
    published = await api.nc.jetstream().publish(JOB_SUBJECT, b"poison")

    pull = await js.pull_subscribe_bind(SETTINGS.consumer, stream=SETTINGS.jobs_stream)
    for _ in range(SETTINGS.max_deliver):
        (job,) = await pull.fetch(1, timeout=5)
        await job.nak()
    # The server notices the exhausted job when it next looks for one to deliver.
    with pytest.raises(asyncio.TimeoutError):
        await pull.fetch(1, timeout=0.2)
    advisories = await js.pull_subscribe_bind(ADVISORY_CONSUMER, stream=SETTINGS.advisories_stream)
    (stored,) = await advisories.fetch(1, timeout=5)
    assert stored.subject == MAX_DELIVERIES
    advisory = json.loads(stored.data)
    assert advisory["stream_seq"] == published.seq

    message = await js.get_msg(SETTINGS.jobs_stream, advisory["stream_seq"])
    assert message.data == b"poison"
    assert await js.delete_msg(SETTINGS.jobs_stream, advisory["stream_seq"])
    await stored.ack_sync()
    await worker.accepted()
    await pull.unsubscribe()
    await advisories.unsubscribe()
    admin = await connect(identities.admin)
    consumer = await admin.nc.jetstream().consumer_info(SETTINGS.advisories_stream, ADVISORY_CONSUMER)
    assert (consumer.num_pending, consumer.num_ack_pending) == (0, 0)


@pytest.mark.parametrize(
    ("what", "subject"),
    [
        ("publish a job", JOB_SUBJECT),
        ("pull from another consumer", f"{NEXT}.other"),
        ("create another consumer", f"$JS.API.CONSUMER.CREATE.{SETTINGS.jobs_stream}.other"),
        ("delete a stream", f"$JS.API.STREAM.DELETE.{SETTINGS.jobs_stream}"),
        ("purge a stream", f"$JS.API.STREAM.PURGE.{SETTINGS.results_stream}"),
        ("rewrite a stream", f"$JS.API.STREAM.UPDATE.{SETTINGS.jobs_stream}"),
        ("delete its consumer", f"$JS.API.CONSUMER.DELETE.{SETTINGS.jobs_stream}.{SETTINGS.consumer}"),
        ("delete a stored result", f"$JS.API.STREAM.MSG.DELETE.{SETTINGS.results_stream}"),
        ("ack another consumer's job", f"$JS.ACK.{SETTINGS.jobs_stream}.other.1.1.1.1.0"),
        ("store a result outside its subject", "maschina.results.other.run-1"),
        ("read the dead letters", f"$JS.API.DIRECT.GET.{DLQ_STREAM}.{DLQ_SUBJECT}"),
        ("list the account's streams", "$JS.API.STREAM.LIST"),
        # A forged advisory would have replicas dead-letter and delete any job it names.
        ("forge a max-deliveries advisory", MAX_DELIVERIES),
        ("rewrite the advisories stream", f"$JS.API.STREAM.UPDATE.{SETTINGS.advisories_stream}"),
    ],
)
async def test_worker_may_not_publish(connect: Connect, identities: Identities, what: str, subject: str) -> None:
    worker, _ = await _set_up(connect, identities)
    await worker.nc.publish(subject, b"{}")
    assert f'permissions violation for publish to "{subject.lower()}"' in await worker.refused(), what


async def test_worker_may_not_read_another_consumer(connect: Connect, identities: Identities) -> None:
    worker, _ = await _set_up(connect, identities)
    admin = await connect(identities.admin)
    other_jobs = "maschina.jobs.billing.export"
    admin_js = admin.nc.jetstream()
    await admin_js.add_consumer(SETTINGS.jobs_stream, ConsumerConfig(durable_name="billing", filter_subject=other_jobs))
    await admin_js.publish(other_jobs, b"{}")

    pull = await worker.nc.jetstream().pull_subscribe_bind("billing", stream=SETTINGS.jobs_stream)
    with pytest.raises(asyncio.TimeoutError):
        await pull.fetch(1, timeout=0.5)
    assert f'publish to "{NEXT.lower()}.billing"' in await worker.refused()
    await pull.unsubscribe()
    assert (await admin_js.consumer_info(SETTINGS.jobs_stream, "billing")).num_pending == 1


@pytest.mark.parametrize(
    "subject", ["maschina.jobs.>", "maschina.results.>", "maschina.dlq.>", "$JS.EVENT.>", "_INBOX.>", "_INBOX.api-7.x"]
)
async def test_worker_may_not_eavesdrop(connect: Connect, identities: Identities, subject: str) -> None:
    worker, _ = await _set_up(connect, identities)
    await worker.nc.subscribe(subject)
    assert f'permissions violation for subscription to "{subject.lower()}"' in await worker.refused()


@pytest.mark.parametrize(
    "subject",
    [
        f"{RESULTS_SUBJECT_PREFIX}run-1",  # a forged billing record
        DLQ_SUBJECT,
        f"{NEXT}.{SETTINGS.consumer}",
        f"$JS.API.STREAM.DELETE.{SETTINGS.jobs_stream}",
        f"$JS.API.STREAM.CREATE.{SETTINGS.jobs_stream}",
    ],
)
async def test_api_may_only_publish_jobs(connect: Connect, identities: Identities, subject: str) -> None:
    _, api = await _set_up(connect, identities)
    await api.nc.publish(subject, b"{}")
    assert f'permissions violation for publish to "{subject.lower()}"' in await api.refused()
