"""examples/python/agent_jobs.py against a real nats-server and a real `agent-worker run` with the fake providers.

One worker process serves the whole module (tests/examples/stack.py says how it is set up); each test uses its
own run ids.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
import pytest_asyncio
from agent_jobs import (
    DLQ_SUBJECT,
    RESULTS_STREAM,
    Job,
    ResultTimeoutError,
    await_result,
    publish_job,
    result_subject,
    signature,
)
from nats.aio.client import Client
from nats.js import JetStreamContext

from tests.examples import stack as stack_module
from tests.examples.stack import ExampleStack, example_stack

pytestmark = [pytest.mark.system, pytest.mark.asyncio(loop_scope="module")]

SIGNING_KEY = stack_module.SIGNING_KEY
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ExampleStack]:
    async with example_stack(Path(tmp_path_factory.mktemp("examples"))) as started:
        yield started


async def provider_calls(stack: ExampleStack) -> int:
    return int((await stack.anthropic.stats())["calls"])


@pytest_asyncio.fixture(loop_scope="module")
async def nc(stack: ExampleStack) -> AsyncIterator[Client]:
    client = await nats.connect(stack.nats.url)
    yield client
    await client.close()


@pytest.fixture
def js(nc: Client) -> JetStreamContext:
    return nc.jetstream()


def new_job(**fields: Any) -> Job:
    job: Job = {
        "runId": str(uuid.uuid4()),
        "agentId": "a9f3b2c1-0d4e-4f5a-8b6c-7d8e9f0a1b2c",
        "userId": "u1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        "tier": "m5",
        "model": "claude-sonnet-4-6",
        "systemPrompt": "You are a research agent.",
        "inputPayload": {"message": "Summarise the attached notes."},
        "timeoutSecs": 30,
    }
    job.update(fields)  # type: ignore[typeddict-item]
    return job


async def test_completed_through_the_reply_inbox_billed_exactly(nc: Client, js: JetStreamContext) -> None:
    job = new_job()
    reply = await nc.subscribe(nc.new_inbox())
    ack = await publish_job(
        js, job, reply_to=reply.subject, signing_key=SIGNING_KEY, job_id="job-1", traceparent=TRACEPARENT
    )
    result = await await_result(js, job["runId"], timeout=20.0, reply=reply)

    assert ack.duplicate is None
    assert (result["status"], result["runId"], result["jobId"]) == ("completed", job["runId"], "job-1")
    assert (result["model"], result["provider"], result["error"]) == ("claude-sonnet-4-6", "anthropic", None)
    assert result["outputPayload"] == {"text": "Hello from the fake provider."}
    billing, usage = result["billing"], result["usage"]
    assert billing["multiplier"] == "3"  # a JSON string: an exact decimal
    raw_input = usage["inputTokens"] + usage["cacheCreationInputTokens"] + usage["cacheReadInputTokens"]
    assert raw_input > 0
    assert billing["billedInputTokens"] == math.ceil(raw_input * Decimal(billing["multiplier"]))
    assert billing["billedOutputTokens"] == math.ceil(usage["outputTokens"] * Decimal(billing["multiplier"]))
    # The worker continued the caller's trace: the record carries the job span's traceparent, in the same trace.
    record = await js.get_last_msg(RESULTS_STREAM, result_subject(job["runId"]), direct=True)
    assert record.headers is not None
    _, trace_id, span_id, _ = record.headers["traceparent"].split("-")
    assert (trace_id, span_id != TRACEPARENT.split("-")[2]) == (TRACEPARENT.split("-")[1], True)


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"tier": "m1", "model": "claude-opus-4-6"}, "rejected", "model_not_allowed"),
        ({"tier": "m10", "model": "claude-opus-4-6"}, "failed", "provider_bad_request"),
        ({"tier": "access", "model": "ollama/llama3.2", "timeoutSecs": 1}, "timed_out", "timeout"),
        ({"inputPayload": {"message": "x" * 100_001}}, "rejected", "input_too_large"),
    ],
    ids=["rejected", "failed", "timed_out", "too_large"],
)
async def test_every_other_status_through_the_results_stream(
    js: JetStreamContext, fields: dict[str, Any], status: str, code: str
) -> None:
    job = new_job(**fields)
    await publish_job(js, job, signing_key=SIGNING_KEY)
    result = await await_result(js, job["runId"], timeout=20.0)

    assert (result["status"], result["runId"]) == (status, job["runId"])
    assert result["error"] is not None
    assert result["error"]["code"] == code
    assert result["outputPayload"] is None


async def test_a_badly_signed_job_is_dead_lettered_and_the_wait_says_where_to_look(js: JetStreamContext) -> None:
    job = new_job()
    dead = await js.subscribe(DLQ_SUBJECT, ordered_consumer=True)
    await publish_job(js, job, signing_key=b"not-the-workers-key")  # bytes or str
    letter = await dead.next_msg(timeout=20.0)
    while orjson.loads(letter.data)["data"]["runId"] != job["runId"]:  # another test's dead letter
        letter = await dead.next_msg(timeout=20.0)
    await dead.unsubscribe()
    assert letter.headers is not None
    assert letter.headers["Maschina-Dlq-Reason"] == "bad_signature"

    with pytest.raises(ResultTimeoutError) as caught:
        await await_result(js, job["runId"], timeout=0.5)
    assert caught.value.run_id == job["runId"]
    assert job["runId"] in str(caught.value)
    assert "dead-lettered" in str(caught.value)
    assert "MASCHINA_DLQ" in str(caught.value)


async def test_a_duplicate_publish_is_dropped_and_the_run_billed_once(
    stack: ExampleStack, js: JetStreamContext
) -> None:
    job = new_job()
    calls_before = await provider_calls(stack)
    first = await publish_job(js, job, signing_key=SIGNING_KEY)
    second = await publish_job(js, job, signing_key=SIGNING_KEY)
    result = await await_result(js, job["runId"], timeout=20.0)

    assert (first.duplicate, second.duplicate) == (None, True)
    assert first.seq == second.seq
    assert result["status"] == "completed"
    assert await provider_calls(stack) == calls_before + 1


async def test_a_finished_run_published_again_gets_its_stored_result_on_the_new_reply(
    stack: ExampleStack, nc: Client, js: JetStreamContext
) -> None:
    job = new_job()
    await publish_job(js, job, signing_key=SIGNING_KEY)
    stored = await await_result(js, job["runId"], timeout=20.0)
    calls_before = await provider_calls(stack)

    # Within the jobs stream's duplicate window the same message id is dropped: nothing reaches the worker.
    dropped = await publish_job(js, job, signing_key=SIGNING_KEY)
    assert dropped.duplicate is True
    # Another message id reaches it; it answers from the stored record, without calling the provider.
    reply = await nc.subscribe(nc.new_inbox())
    again = await publish_job(js, job, reply_to=reply.subject, signing_key=SIGNING_KEY, msg_id=job["runId"] + "-again")
    copy = await await_result(js, job["runId"], timeout=20.0, reply=reply)

    assert again.duplicate is None
    assert copy == stored
    assert await provider_calls(stack) == calls_before


async def test_a_missed_reply_copy_is_read_from_the_record_at_the_deadline(nc: Client, js: JetStreamContext) -> None:
    job = new_job()
    await publish_job(js, job, signing_key=SIGNING_KEY)  # no replyTo: no copy is ever sent
    stored = await await_result(js, job["runId"], timeout=20.0)

    reply = await nc.subscribe(nc.new_inbox())
    assert await await_result(js, job["runId"], timeout=0.2, reply=reply) == stored


async def test_a_custom_inbox_prefix_works_only_when_the_worker_allows_it(stack: ExampleStack) -> None:
    allowed = await nats.connect(stack.nats.url, inbox_prefix=stack_module.INBOX_PREFIX)
    other = await nats.connect(stack.nats.url, inbox_prefix="other.inbox")
    try:
        job = new_job()
        reply = await allowed.subscribe(allowed.new_inbox())
        await publish_job(allowed.jetstream(), job, reply_to=reply.subject, signing_key=SIGNING_KEY)
        assert (await await_result(allowed.jetstream(), job["runId"], timeout=20.0, reply=reply))["status"] == (
            "completed"
        )

        refused = new_job()
        await publish_job(other.jetstream(), refused, reply_to=other.new_inbox(), signing_key=SIGNING_KEY)
        result = await await_result(other.jetstream(), refused["runId"], timeout=20.0)
        assert result["status"] == "rejected"
        assert result["error"] is not None
        assert result["error"]["code"] == "invalid_job"
        assert "replyTo" in result["error"]["message"]
    finally:
        await allowed.close()
        await other.close()


async def test_publish_job_writes_the_envelope_and_headers_the_worker_reads(js: JetStreamContext) -> None:
    """Published where no worker consumes, then read back from the jobs stream as the worker would see it."""
    probe = "maschina.jobs.examples.probe"
    job = new_job()
    await publish_job(
        js, job, reply_to="_INBOX.api.1", signing_key=SIGNING_KEY, traceparent=TRACEPARENT, job_id="j", subject=probe
    )
    msg = await js.get_last_msg("MASCHINA_JOBS", probe)

    assert msg.data is not None
    assert msg.headers is not None
    body = orjson.loads(msg.data)
    assert (body["id"], body["replyTo"], body["subject"], body["version"], body["data"]) == (
        "j",
        "_INBOX.api.1",
        probe,
        1,
        job,
    )
    assert body["timestamp"].endswith("Z")
    assert msg.headers["Nats-Msg-Id"] == job["runId"]
    assert msg.headers["Maschina-Signature"] == signature(msg.data, SIGNING_KEY)
    assert msg.headers["traceparent"] == TRACEPARENT
