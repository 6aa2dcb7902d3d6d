"""`agent-worker run` as a process: SIGTERM with jobs in flight, and two replicas sharing one consumer."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest
from nats.aio.client import Client

from testkit import FakeAnthropic, FakeConfig, Step
from testkit.process import WorkerProcess
from tests.worker.support import (
    ResultWatch,
    StartWorker,
    job,
    publish_job,
    publish_jobs,
    stored_count,
    wait_until_acked,
)
from worker.embedded import NatsServer

pytestmark = pytest.mark.system

MakeProcess = Callable[..., WorkerProcess]


@pytest.fixture
async def anthropic() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(FakeConfig(delay=0.05)) as fake:
        yield fake


@pytest.fixture
async def make_process(nats_server: NatsServer, anthropic: FakeAnthropic, tmp_path: Path) -> AsyncIterator[MakeProcess]:
    made: list[WorkerProcess] = []

    def make(name: str, **settings: str) -> WorkerProcess:
        values = {
            "NATS_URL": nats_server.url,
            "ANTHROPIC_API_KEY": "sk-test",
            "ANTHROPIC_BASE_URL": anthropic.base_url,
            "WORKER_ACK_WAIT_SECS": "5",
            **settings,
        }
        process = WorkerProcess(name, values, tmp_path)
        made.append(process)
        return process

    yield make
    for process in made:
        await process.close()


async def test_sigterm_with_jobs_in_flight_exits_0_and_no_job_is_lost(
    make_process: MakeProcess,
    start_worker: StartWorker,
    anthropic: FakeAnthropic,
    client: Client,
    results: ResultWatch,
) -> None:
    grace = 2.0
    first = await make_process("worker-first", WORKER_CONCURRENCY="4", WORKER_SHUTDOWN_GRACE_SECS=str(grace)).start()
    # Of the four jobs the first replica takes, two finish within the grace period and two never would.
    anthropic.script(Step.reply(delay=0.5), Step.reply(delay=0.5), Step.hang(), Step.hang())
    bodies = await publish_jobs(client, 8)
    run_ids = [body["data"]["runId"] for body in bodies]
    await anthropic.wait_until(lambda stats: stats.in_flight >= 4)

    signalled = time.monotonic()
    first.signal(signal.SIGTERM)
    assert await first.wait(within=grace + 10) == 0
    assert time.monotonic() - signalled < grace + 3

    # The next replica (in-process, with the real Anthropic provider built from its settings).
    await start_worker(
        from_settings=True,
        worker_id="worker-second",
        anthropic_api_key="sk-test",
        anthropic_base_url=anthropic.base_url,
    )
    await results.wait_for(run_ids, within=20)
    await wait_until_acked(client)
    for run_id in run_ids:
        assert await stored_count(client, run_id) == 1
        assert len(results.by_run[run_id]) == 1
    finals = [results.by_run[run_id][0] for run_id in run_ids]
    assert all(result["status"] == "completed" for result in finals)
    by_worker_attempt = Counter((result["workerId"], result["attempt"]) for result in finals)
    # The two cut short were nak'ed and went to the next replica at once, as their second delivery.
    assert by_worker_attempt == {("worker-first", 1): 2, ("worker-second", 2): 2, ("worker-second", 1): 4}


async def test_two_replicas_share_the_jobs_without_duplicates(
    make_process: MakeProcess, client: Client, results: ResultWatch
) -> None:
    replicas = [make_process(f"replica-{n}", WORKER_CONCURRENCY="4") for n in (1, 2)]
    await asyncio.gather(*(replica.start() for replica in replicas))
    bodies = [job() for _ in range(60)]
    run_ids = [body["data"]["runId"] for body in bodies]
    await asyncio.gather(*(publish_job(client, body) for body in bodies))

    await results.wait_for(run_ids, within=30)
    await wait_until_acked(client)

    assert all(len(results.by_run[run_id]) == 1 for run_id in run_ids)
    assert all([await stored_count(client, run_id) for run_id in run_ids])
    by_worker = Counter(results.by_run[run_id][0]["workerId"] for run_id in run_ids)
    assert set(by_worker) == {"replica-1", "replica-2"}
    assert sum(by_worker.values()) == 60
    for replica in replicas:
        replica.signal(signal.SIGTERM)
    assert [await replica.wait(within=10) for replica in replicas] == [0, 0]


async def test_a_jobs_log_lines_carry_its_run_and_never_its_prompt_or_the_key(
    make_process: MakeProcess, client: Client, results: ResultWatch
) -> None:
    secrets = ("sk-ant-never-logged-7f3a", "system-prompt-never-logged", "user-message-never-logged")
    replica = await make_process("replica-logs", ANTHROPIC_API_KEY=secrets[0]).start()
    body = job(systemPrompt=secrets[1], inputPayload={"message": secrets[2]})
    run_id = body["data"]["runId"]
    stream_seq = await publish_job(client, body)
    await results.one(run_id)
    replica.signal(signal.SIGTERM)
    assert await replica.wait(within=10) == 0

    text = replica.log_path.read_text()
    lines = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    [stored] = [line for line in lines if line["event"] == "result_stored"]
    assert stored == {
        **stored,
        "level": "info",
        "runId": run_id,
        "jobId": body["id"],
        "tier": "m5",
        "model": "claude-sonnet-4-6",
        "attempt": 1,
        "streamSeq": stream_seq,
        "status": "completed",
    }
    assert all(secret not in text for secret in secrets)
