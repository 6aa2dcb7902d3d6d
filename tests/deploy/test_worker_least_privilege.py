"""The real `agent-worker run` process does all its work as the worker user of deploy/nats/nats-server.conf.

It starts (streams, consumers, the advisory fetch loop), consumes jobs the API user publishes, calls a fake
Anthropic over real HTTP, stores results, sends reply copies and dead-letters, and shuts down on SIGTERM,
all without one permission violation in the server's log.
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from nats.aio.msg import Msg

from catalog.quota import MonthlyUsage
from testkit import FakeAnthropic, Step
from testkit.jobs import encode, example_envelope, example_job
from testkit.process import WorkerProcess
from tests.deploy.support import Connect, Identities, Session
from tests.worker.support import polled
from worker.contract import DLQ_STREAM, DLQ_SUBJECT, RESULTS_SUBJECT_PREFIX, WORKER_INBOX_PREFIX
from worker.embedded import NatsServer
from worker.jetstream.topology import advisory_consumer_config
from worker.settings import Settings

pytestmark = pytest.mark.system

SETTINGS = Settings.from_env({})
JOB_SUBJECT = SETTINGS.subjects[0]
START_TIMEOUT_SECS = 60
EVENT_TIMEOUT_SECS = 15


def _job(run_id: str, reply_to: str, **fields: Any) -> bytes:
    data = example_job(runId=run_id, userId="user-1", **fields)
    return encode(example_envelope(data, job_id=str(uuid.uuid4()), reply_to=reply_to))


@asynccontextmanager
async def _worker_process(
    server: NatsServer,
    identities: Identities,
    anthropic_url: str,
    worker_id: str,
    log_dir: Path,
    **settings: str,
) -> AsyncIterator[WorkerProcess]:
    """`agent-worker run` as a child process, as the worker identity; yields once it is ready (consumer bound).

    At the end it is sent SIGTERM and must exit 0, unless the test already ended it.
    """
    worker = WorkerProcess(
        worker_id,
        {
            "NATS_URL": server.url,
            "NATS_NKEY_SEED": str(identities.worker.seed_file),
            "WORKER_SHUTDOWN_GRACE_SECS": "5",
            "ANTHROPIC_API_KEY": "test-key",
            "ANTHROPIC_BASE_URL": anthropic_url,
            **settings,
        },
        log_dir,
    )
    try:
        yield await worker.start(within=START_TIMEOUT_SECS)
        if worker.alive:
            worker.signal(signal.SIGTERM)
            assert await worker.wait(within=START_TIMEOUT_SECS) == 0, worker.log_tail()
    finally:
        await worker.close()


async def _next(inbox: Any) -> dict[str, Any]:
    message: Msg = await inbox.next_msg(timeout=EVENT_TIMEOUT_SECS)
    result: dict[str, Any] = json.loads(message.data)
    return result


async def test_the_worker_runs_under_its_permissions(
    connect: Connect, identities: Identities, secured_nats: NatsServer, monitoring_port: int, tmp_path: Path
) -> None:
    worker_id = f"least-privilege-{uuid.uuid4().hex[:8]}"
    async with (
        FakeAnthropic() as anthropic,
        _worker_process(secured_nats, identities, anthropic.url, worker_id, tmp_path),
    ):
        api: Session = await connect(identities.api)
        js = api.nc.jetstream()
        reply_to = api.nc.new_inbox()
        replies = await api.nc.subscribe(reply_to)

        await js.publish(JOB_SUBJECT, _job("run-ok", reply_to))
        completed = await _next(replies)
        assert (completed["runId"], completed["status"], completed["provider"]) == ("run-ok", "completed", "anthropic")
        assert completed["billing"]["billedTokens"] > 0

        await js.publish(JOB_SUBJECT, _job("run-no", reply_to, tier="gold"))
        rejected = await _next(replies)
        assert (rejected["status"], rejected["error"]["code"]) == ("rejected", "unknown_tier")

        # The same job again: the worker finds the stored result (a read of the results stream) and re-sends it.
        await js.publish(JOB_SUBJECT, _job("run-ok", reply_to))
        assert (await _next(replies))["finishedAt"] == completed["finishedAt"]
        assert len(anthropic.requests) == 1

        await js.publish(JOB_SUBJECT, b"not json")
        admin = await connect(identities.admin)
        dead = await admin.nc.jetstream().pull_subscribe(DLQ_SUBJECT, durable="audit", stream=DLQ_STREAM)
        (letter,) = await dead.fetch(1, timeout=EVENT_TIMEOUT_SECS)
        assert letter.data == b"not json"
        assert letter.headers is not None
        assert letter.headers["Maschina-Dlq-Reason"] == "not_json"
        await dead.unsubscribe()

        stored = await js.get_last_msg(SETTINGS.results_stream, f"{RESULTS_SUBJECT_PREFIX}run-ok", direct=True)
        assert stored.data is not None
        assert json.loads(stored.data)["status"] == "completed"

        # And it really was the worker's identity doing all this.
        assert _authorized_users(monitoring_port)[worker_id] == identities.worker.public_key

    log = secured_nats.log_path.read_text()
    assert "Violation" not in log, [line for line in log.splitlines() if "Violation" in line]


async def test_quotas_run_under_the_permissions(
    connect: Connect, identities: Identities, secured_nats: NatsServer, tmp_path: Path
) -> None:
    """WORKER_QUOTAS=on: the usage bucket created, each run reserved and settled in it, as the worker user."""
    async with (
        FakeAnthropic() as anthropic,
        _worker_process(secured_nats, identities, anthropic.url, "quotas", tmp_path, WORKER_QUOTAS="on"),
    ):
        api: Session = await connect(identities.api)
        reply_to = api.nc.new_inbox()
        replies = await api.nc.subscribe(reply_to)
        await api.nc.jetstream().publish(JOB_SUBJECT, _job("run-counted", reply_to))
        completed = await _next(replies)
        assert completed["status"] == "completed"
        admin = await connect(identities.admin)
        kv = await admin.nc.jetstream().key_value(SETTINGS.usage_bucket)
        (key,) = await kv.keys()
        assert key.startswith("user-1.")

        # Settled before the ack; the reply copy may come first, so the value is polled.
        async def settled() -> bool:
            return not MonthlyUsage.from_json((await kv.get(key)).value or b"").reserved

        await polled(settled, within=EVENT_TIMEOUT_SECS, what="the reservation settled")
        usage = MonthlyUsage.from_json((await kv.get(key)).value or b"")
        assert usage == MonthlyUsage(completed["billing"]["billedTokens"], {})

    log = secured_nats.log_path.read_text()
    assert "Violation" not in log, [line for line in log.splitlines() if "Violation" in line]


def _authorized_users(monitoring_port: int) -> dict[str, str]:
    """Connection name → the user it authenticated as, from the server's /connz."""
    with urllib.request.urlopen(f"http://127.0.0.1:{monitoring_port}/connz?auth=true", timeout=5) as answer:
        connections = json.load(answer)["connections"]
    return {c.get("name", ""): c.get("authorized_user", "") for c in connections}


async def test_a_job_whose_replica_died_is_dead_lettered_under_the_permissions(
    connect: Connect, identities: Identities, secured_nats: NatsServer, tmp_path: Path
) -> None:
    """The max-deliveries path: the stored advisory pulled and acked, the job read back by sequence, dead letter,
    result, delete."""
    # One delivery and a one-second ack_wait, so a replica killed mid-job exhausts the job at once.
    short = {"WORKER_MAX_DELIVER": "1", "WORKER_ACK_WAIT_SECS": "1"}
    async with FakeAnthropic() as anthropic:
        anthropic.script(Step(kind="hang"))
        api = await connect(identities.api)
        reply_to = api.nc.new_inbox()
        replies = await api.nc.subscribe(reply_to)
        # The admin watches the worker's delete request and the server's answer to it (no event announces a
        # deleted message otherwise).
        admin = await connect(identities.admin)
        deletes = await admin.nc.subscribe(f"$JS.API.STREAM.MSG.DELETE.{SETTINGS.jobs_stream}")
        answers = await admin.nc.subscribe(f"{WORKER_INBOX_PREFIX}.>")
        body = _job("run-lost", reply_to)
        async with _worker_process(secured_nats, identities, anthropic.url, "doomed", tmp_path, **short) as doomed:
            await api.nc.jetstream().publish(JOB_SUBJECT, body)
            await asyncio.wait_for(anthropic.wait_until(lambda stats: stats.in_flight == 1), EVENT_TIMEOUT_SECS)
            # Killed at once, long before its in_progress beats could fall behind the one-second ack_wait on a
            # busy machine: the job's deliveries then run out while no replica runs, and the server's advisory
            # waits in the advisories stream for the next replica.
            doomed.kill()
        async with _worker_process(secured_nats, identities, anthropic.url, "survivor", tmp_path, **short):
            failed = await _next(replies)
            assert (failed["runId"], failed["status"]) == ("run-lost", "failed")
            assert failed["error"]["code"] == "max_deliveries_exceeded"
            dead = await admin.nc.jetstream().pull_subscribe(DLQ_SUBJECT, durable="audit", stream=DLQ_STREAM)
            (letter,) = await dead.fetch(1, timeout=EVENT_TIMEOUT_SECS)
            assert letter.data == body
            assert letter.headers is not None
            assert letter.headers["Maschina-Dlq-Reason"] == "max_deliveries_exceeded"
            await dead.unsubscribe()

            delete = await deletes.next_msg(timeout=EVENT_TIMEOUT_SECS)
            answer = await answers.next_msg(timeout=EVENT_TIMEOUT_SECS)
            while answer.subject != delete.reply:
                answer = await answers.next_msg(timeout=EVENT_TIMEOUT_SECS)
            assert json.loads(answer.data)["success"] is True
            assert (await admin.nc.jetstream().stream_info(SETTINGS.jobs_stream)).state.messages == 0
            await _advisories_acked(admin)

            # The runbook's re-publish of this dead letter (docs/operations.md): same body, original subject.
            # One result per runId: the stored `failed` result comes back, the provider is not called again.
            await api.nc.jetstream().publish(letter.headers["Maschina-Original-Subject"], letter.data)
            assert (await _next(replies))["finishedAt"] == failed["finishedAt"]
            assert anthropic.stats.calls == 1

    log = secured_nats.log_path.read_text()
    assert "Violation" not in log, [line for line in log.splitlines() if "Violation" in line]


async def _advisories_acked(admin: Session) -> None:
    """The survivor acked the stored advisory once done with it (its ack is a publish nothing answers: polled)."""
    name = str(advisory_consumer_config(SETTINGS).durable_name)

    async def acked() -> bool:
        consumer = await admin.nc.jetstream().consumer_info(SETTINGS.advisories_stream, name)
        return bool(consumer.num_pending == consumer.num_ack_pending == 0 and consumer.delivered.stream_seq > 0)

    await polled(acked, within=EVENT_TIMEOUT_SECS, what="the advisory acked")
