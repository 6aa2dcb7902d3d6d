"""Issue 11 item 2: everything the worker publishes fits the server's `max_payload`, headers included
(docs/contract.md §6, §7).

One real `agent-worker run` replica against a nats-server started with `max_payload: 65536`: a job with a
`Status` header, an unparseable body just under the limit (dead-lettered, cut, `Maschina-Dlq-Truncated`),
a job whose `model` is 50,000 characters, and a job whose provider answers 110 KB of text (stored as
`failed`/`result_too_large`, billed as reported, its reply copy the same small record, the provider called
once). Before the fix each of the last three closed the replica's connection for good and crash-looped it.
After all of them the same process serves the next job.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import orjson
import pytest
from nats.aio.client import Client

from testkit import Step
from tests.hostile.harness import Stack, job_body, new_run_id, settle, start_stack
from tests.reliability.ledger import wait_until
from worker.contract import DLQ_STREAM, JOB_SUBJECT, RESULTS_STREAM, RESULTS_SUBJECT_PREFIX

pytestmark = pytest.mark.system

MAX_PAYLOAD = 64 * 1024
LONG_ANSWER = " ".join(["abcdefghij"] * 10_000)  # 110,000 bytes: no result holding it fits
SONNET_MULTIPLIER = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(Path(tmp_path_factory.mktemp("size")), server_config=f"max_payload: {MAX_PAYLOAD}")
    yield stack
    stack.close()


@pytest.fixture
async def nc(stack: Stack) -> AsyncIterator[Client]:
    client = await nats.connect(stack.server.url)
    assert client.max_payload == MAX_PAYLOAD
    yield client
    await client.close()


async def _stored(nc: Client, run_id: str, *, limit: int = MAX_PAYLOAD) -> dict[str, object]:
    message = await nc.jetstream().get_last_msg(RESULTS_STREAM, RESULTS_SUBJECT_PREFIX + run_id)
    assert message.data is not None
    size = len(message.data) + sum(len(k) + len(v) + 4 for k, v in (message.headers or {}).items()) + 12
    assert size <= limit
    stored: dict[str, object] = orjson.loads(message.data)
    return stored


async def test_everything_published_fits_a_64_kib_server(stack: Stack, nc: Client) -> None:
    js = nc.jetstream()
    calls_before = int((await stack.provider.stats())["calls"])

    status_job = new_run_id("size-status")
    await js.publish(JOB_SUBJECT, job_body(status_job), headers={"Status": "pending"})

    # Unparseable, and as large as a publisher can make it: too large to forward with the dead-letter headers.
    unparseable = b"{" + b"x" * (MAX_PAYLOAD - 64)
    await js.publish(JOB_SUBJECT, unparseable)

    huge_model = new_run_id("size-model")
    await js.publish(JOB_SUBJECT, job_body(huge_model, model="m" * 50_000))

    long_answer = new_run_id("size-answer")
    reply_to = f"_INBOX.size.{long_answer}"
    copies = await nc.subscribe(reply_to)
    await stack.provider.script(Step.reply(LONG_ANSWER))
    await js.publish(JOB_SUBJECT, job_body(long_answer, max_tokens=16_384, reply_to=reply_to))

    outcomes = await settle(nc, [status_job, huge_model, long_answer], dead_bodies=[unparseable], within=90)

    after = new_run_id("size-after")
    await js.publish(JOB_SUBJECT, job_body(after))
    final = await settle(nc, [status_job, huge_model, long_answer, after], dead_bodies=[unparseable], within=60)
    letters = [letter for letter in final.ledger.dead_letters if unparseable.startswith(letter.body)]
    print(f"64 KiB server: {final.figures(sent=5)} (dead letters of the unparseable body: {len(letters)})")
    assert not final.lost
    assert not final.duplicated
    assert len(letters) == 1

    # The Status-header job and the job after everything: completed.
    assert outcomes.ledger.one(status_job).status == "completed"
    assert final.ledger.one(after).status == "completed"

    # The dead letter: cut to what fits, saying how long the body was.
    dead = await js.get_last_msg(DLQ_STREAM, "maschina.dlq.agent.execute")
    headers = dead.headers or {}
    assert dead.data is not None
    assert headers["Maschina-Dlq-Reason"] == "not_json"
    assert headers["Maschina-Dlq-Truncated"] == str(len(unparseable))
    assert 0 < len(dead.data) < len(unparseable)
    assert unparseable.startswith(dead.data)
    wire = len(dead.data) + 12 + sum(len(k) + len(v) + 4 for k, v in headers.items())
    assert MAX_PAYLOAD - 64 < wire <= MAX_PAYLOAD, "cut to the bytes that fit, no fewer"

    # The huge model: one small record (rejected with a bounded echo, or result_too_large).
    model_result = await _stored(nc, huge_model)
    assert model_result["status"] in ("rejected", "failed")

    # The long answer: failed/result_too_large, billed as the provider reported, not run again.
    answer = await _stored(nc, long_answer)
    error = answer["error"]
    assert isinstance(error, dict)
    assert (answer["status"], error["code"], error["retryable"]) == ("failed", "result_too_large", False)
    assert answer["outputPayload"] is None
    assert str(MAX_PAYLOAD) in error["message"]
    usage, billing = answer["usage"], answer["billing"]
    assert isinstance(usage, dict)
    assert isinstance(billing, dict)
    assert usage["outputTokens"] == 10_000
    assert billing["billedOutputTokens"] == math.ceil(10_000 * SONNET_MULTIPLIER)
    assert billing["billedInputTokens"] == usage["inputTokens"] * SONNET_MULTIPLIER > 0
    assert final.ledger.one(long_answer).attempt == 1
    copy = await copies.next_msg(timeout=10)
    assert orjson.loads(copy.data) == answer

    # One provider call each for the three jobs that reached it (Status, long answer, the one after).
    assert int((await stack.provider.stats())["calls"]) - calls_before == 3
    assert stack.worker.alive, stack.worker.log_tail()
    assert await stack.healthz() == 200
    output = stack.output()
    assert "result_too_large" in output
    for event in ("job_crashed", "fetch_loop_error", "nats_closed", "fetch_loop_ended"):
        assert event not in output, f"the replica logged {event}"


async def test_the_limit_is_read_again_after_a_reconnect(tmp_path: Path) -> None:
    """The same 110 KB answer fits a server announcing 128 KiB, and becomes result_too_large once the replica
    has reconnected to it restarted with 64 KiB: the limit comes from the INFO of every (re)connect."""
    # Started from a thread: the harness runs its own event loop to wait for the children.
    stack = await asyncio.to_thread(start_stack, tmp_path, server_config="max_payload: 131072")
    try:
        async with _client(stack) as nc:
            before = new_run_id("limit-before")
            await stack.provider.script(Step.reply(LONG_ANSWER))
            await nc.jetstream().publish(JOB_SUBJECT, job_body(before, max_tokens=16_384))
            await settle(nc, [before])
            assert (await _stored(nc, before, limit=131_072))["status"] == "completed"

        assert stack.server.config_file is not None
        stack.server.config_file.write_text(f"max_payload: {MAX_PAYLOAD}\n")
        stack.server.stop()
        stack.server.start()
        await wait_until(_reconnected(stack), within=60, what="the replica reconnecting")

        async with _client(stack) as nc:
            assert nc.max_payload == MAX_PAYLOAD
            after = new_run_id("limit-after")
            await stack.provider.script(Step.reply(LONG_ANSWER))
            await nc.jetstream().publish(JOB_SUBJECT, job_body(after, max_tokens=16_384))
            outcomes = await settle(nc, [before, after])
            print(f"limit re-read on reconnect: {outcomes.figures(sent=2)}")
            assert not outcomes.duplicated
            stored = await _stored(nc, after)
        error = stored["error"]
        assert isinstance(error, dict)
        assert (stored["status"], error["code"]) == ("failed", "result_too_large")
        assert str(MAX_PAYLOAD) in error["message"]
        assert stack.worker.alive
    finally:
        stack.close()


@asynccontextmanager
async def _client(stack: Stack) -> AsyncIterator[Client]:
    client = await nats.connect(stack.server.url)
    try:
        yield client
    finally:
        await client.close()


def _reconnected(stack: Stack) -> Callable[[], Awaitable[bool]]:
    async def seen() -> bool:
        return '"event":"nats_reconnected"' in stack.output()

    return seen
