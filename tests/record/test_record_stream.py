"""`record --stream`: the archive of docs/recordings.md (jobs republished into a Limits stream) copied to a file.

A real nats-server and the worker consuming beside it: every job is acked and gone from the work queue, and
the archive still holds each one, which `record --stream` writes with its original subject and headers.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest
from nats.aio.client import Client
from nats.js.api import RePublish, RetentionPolicy, StorageType, StreamConfig

from tests.record.cli import Cli
from tests.worker.support import ResultWatch, StartWorker, job, wait_until_acked
from worker.contract import JOB_SUBJECT
from worker.embedded import NatsServer
from worker.payloads import read_payloads

pytestmark = pytest.mark.system

ARCHIVE = "MASCHINA_JOBS_ARCHIVE"


async def archive_jobs(client: Client) -> None:
    """What ops do with the nats CLI in docs/recordings.md: republish the jobs stream into a Limits stream."""
    js = client.jetstream()
    jobs = (await js.stream_info("MASCHINA_JOBS")).config
    await js.update_stream(
        dataclasses.replace(jobs, republish=RePublish(src="maschina.jobs.>", dest="archive.maschina.jobs.>"))
    )
    await js.add_stream(
        StreamConfig(
            name=ARCHIVE,
            subjects=["archive.maschina.jobs.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
        )
    )


async def test_the_archive_keeps_every_job_the_workers_took_and_record_copies_it_as_published(
    nats_server: NatsServer, start_worker: StartWorker, client: Client, results: ResultWatch, tmp_path: Path
) -> None:
    await start_worker()
    await archive_jobs(client)
    published = [(orjson.dumps(job()), {"Maschina-Signature": f"sha256={i:064x}", "X-Odd": ""}) for i in range(20)]
    published.append((b"\xff not UTF-8", {"X-Odd": "dead letter"}))
    for body, headers in published:
        await client.jetstream().publish(JOB_SUBJECT, body, headers=headers)
    await results.wait_for([orjson.loads(body)["data"]["runId"] for body, _ in published[:-1]], within=30)
    await wait_until_acked(client)

    out = tmp_path / "archive.jsonl"
    env = {"NATS_URL": nats_server.url}
    code, _, err = await (await Cli.start("record", "--stream", ARCHIVE, "--out", str(out), env=env)).finish()
    assert code == 0, err
    assert [(p.body, p.headers) for p in read_payloads(out)] == published
    assert all(orjson.loads(line)["subject"] == JOB_SUBJECT for line in out.read_bytes().splitlines())

    first = tmp_path / "first.jsonl"
    cli = await Cli.start("record", "--stream", ARCHIVE, "--count", "3", "--out", str(first), env=env)
    assert (await cli.finish())[0] == 0
    assert [p.body for p in read_payloads(first)] == [body for body, _ in published[:3]]

    # The jobs stream itself is a work queue: reading it would take the jobs away from the workers.
    code, _, err = await (await Cli.start("record", "--stream", "MASCHINA_JOBS", "--out", str(first), env=env)).finish()
    assert code == 1
    assert "work-queue" in err
