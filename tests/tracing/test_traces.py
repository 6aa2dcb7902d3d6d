"""Traces of real `agent-worker run` processes, exported over OTLP/HTTP to a receiver the test runs
(docs/contract.md §10, §11).

Each test starts a nats-server, the fake Anthropic API, an OTLP receiver and one worker process (quotas on) whose only
tracing configuration is the standard `OTEL_*` variables; the batch processor exports every 50 ms.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from testkit import FakeAnthropic, FakeConfig, Step
from testkit.otlp import ExportedSpan, OtlpReceiver, SpanKind
from testkit.process import WorkerProcess
from tests.worker.support import Listener, ResultWatch, job, publish_job, worker_settings
from tests.worker.test_max_deliveries import exhaust_with_no_worker
from worker.contract import JOB_SUBJECT
from worker.embedded import NatsServer
from worker.jetstream.store import result_subject

pytestmark = pytest.mark.system

API_KEY = "sk-ant-api03-tracing-test-key-0123456789abcdefghijklmnop"
SYSTEM_PROMPT = "You are Scout, a meticulous research agent working for the tracing test suite."
MESSAGE = "Summarise the quarterly notes on the Rotterdam warehouse expansion in three bullet points."
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACESTATE = "maschina=api-7,congo=t61rcWkgMzE"


@pytest.fixture
async def anthropic() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(FakeConfig(api_key=API_KEY)) as fake:
        yield fake


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    async with OtlpReceiver() as otlp:
        yield otlp


def traced_worker(
    nats_server: NatsServer, anthropic: FakeAnthropic, receiver: OtlpReceiver, tmp_path: Path, **more: str
) -> WorkerProcess:
    settings = {
        "NATS_URL": nats_server.url,
        "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_BASE_URL": anthropic.base_url,
        "WORKER_ACK_WAIT_SECS": "5",
        "WORKER_RETRY_BASE_SECS": "0.01",
        "WORKER_RETRY_CAP_SECS": "0.02",
        # Quotas on, so that the quota steps show on the job span too.
        "WORKER_QUOTAS": "on",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "agent-worker-tracing-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        **more,
    }
    return WorkerProcess("worker-traced", settings, tmp_path)


@pytest.fixture
async def worker(
    nats_server: NatsServer, anthropic: FakeAnthropic, receiver: OtlpReceiver, tmp_path: Path
) -> AsyncIterator[WorkerProcess]:
    process = traced_worker(nats_server, anthropic, receiver, tmp_path)
    await process.start()
    yield process
    await process.close()


def traced_job(**data: Any) -> dict[str, Any]:
    return job(systemPrompt=SYSTEM_PROMPT, inputPayload={"message": MESSAGE}, **data)


async def stored_headers(client: Client, run_id: str) -> dict[str, str]:
    stored = await client.jetstream().get_last_msg("MASCHINA_RESULTS", result_subject(run_id))
    return dict(stored.headers or {})


def job_spans(spans: Iterable[ExportedSpan], run_id: str) -> list[ExportedSpan]:
    return [
        span
        for span in spans
        if span.kind == SpanKind.SPAN_KIND_CONSUMER and span.attributes.get("maschina.run_id") == run_id
    ]


def children(spans: Iterable[ExportedSpan], parent: ExportedSpan) -> list[ExportedSpan]:
    return sorted(
        (span for span in spans if span.trace_id == parent.trace_id and span.parent_span_id == parent.span_id),
        key=lambda span: span.start_ns,
    )


def assert_nothing_secret(spans: Iterable[ExportedSpan]) -> None:
    """docs/contract.md §11: no key and no 20 consecutive characters of the system prompt or message in any span."""
    fragments = {API_KEY[i : i + 20] for i in range(len(API_KEY) - 19)}
    for text in (SYSTEM_PROMPT, MESSAGE):
        fragments |= {text[i : i + 20] for i in range(len(text) - 19)}
    for span in spans:
        for value in span.strings():
            leaked = [fragment for fragment in fragments if fragment in value]
            assert not leaked, f"span {span.name!r} carries {leaked[0]!r}"
        for value in span.resource.values():
            assert not any(fragment in str(value) for fragment in fragments)


async def test_a_job_with_traceparent_continues_its_trace_to_the_model_call_and_back(
    worker: WorkerProcess, anthropic: FakeAnthropic, receiver: OtlpReceiver, client: Client, results: ResultWatch
) -> None:
    usage = {"input_tokens": 100, "output_tokens": 7, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 20}
    anthropic.script(Step.reply("Three bullet points.", usage=usage))
    inbox = await Listener("_INBOX.tracing.caller").open(client)
    body = traced_job(reply_to=inbox.subject)
    run_id = body["data"]["runId"]
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01", "tracestate": TRACESTATE}
    seq = await publish_job(client, body, headers=headers)

    result = await results.one(run_id, within=20)
    assert result["status"] == "completed"
    reply = await inbox.next(within=10)
    spans = await receiver.wait_for(lambda spans: len([s for s in spans if s.trace_id == TRACE_ID]) >= 2)
    in_trace = receiver.trace(TRACE_ID)

    # One job span, child of the API's span, and one call span under it: nothing duplicated (no SDK span).
    assert len(in_trace) == 2, [span.name for span in in_trace]
    (job_span,) = job_spans(in_trace, run_id)
    assert job_span.parent_span_id == PARENT_SPAN_ID
    assert job_span.name == f"process {JOB_SUBJECT}"
    assert job_span.resource["service.name"] == "agent-worker-tracing-test"
    attributes = job_span.attributes
    assert attributes["messaging.system"] == "nats"
    assert attributes["messaging.destination.name"] == JOB_SUBJECT
    assert attributes["messaging.message.id"] == str(seq)
    assert attributes["messaging.nats.message.delivery_count"] == 1
    assert attributes["maschina.tier"] == "m5"
    assert attributes["maschina.status"] == "completed"
    assert attributes["maschina.billed_tokens"] == result["billing"]["billedTokens"] > 0
    assert "maschina.error_code" not in attributes
    assert not job_span.failed
    events = dict(job_span.events)
    assert list(events) == ["result.lookup", "quota.reserved", "result.stored", "reply.sent", "quota.settled"]
    assert events["result.lookup"] == {}
    assert events["quota.reserved"]["maschina.quota.refused"] is False
    assert events["quota.reserved"]["maschina.quota.tokens"] > result["billing"]["billedTokens"]

    (call,) = children(in_trace, job_span)
    assert call.kind == SpanKind.SPAN_KIND_CLIENT
    assert call.name == "chat claude-sonnet-4-6"
    assert call.attributes["gen_ai.operation.name"] == "chat"
    assert call.attributes["gen_ai.provider.name"] == "anthropic"
    assert call.attributes["gen_ai.request.model"] == "claude-sonnet-4-6"
    assert call.attributes["gen_ai.response.model"] == "claude-sonnet-4-6"
    # GenAI conventions: the input count includes the cache tokens (the result's inputTokens does not).
    assert call.attributes["gen_ai.usage.input_tokens"] == 150
    assert result["usage"]["inputTokens"] == 100
    assert call.attributes["gen_ai.usage.output_tokens"] == 7
    assert call.attributes["gen_ai.usage.cache_read.input_tokens"] == 30
    assert call.attributes["gen_ai.usage.cache_creation.input_tokens"] == 20
    assert job_span.start_ns <= call.start_ns <= call.end_ns <= job_span.end_ns

    # The stored record and the reply copy carry the job span's context, so their readers join the trace.
    traceparent = f"00-{TRACE_ID}-{job_span.span_id}-01"
    stored = await stored_headers(client, run_id)
    assert stored["traceparent"] == traceparent
    assert stored["tracestate"] == TRACESTATE
    assert reply.headers is not None
    assert reply.headers["traceparent"] == traceparent
    assert_nothing_secret(spans)


async def test_each_retried_call_is_its_own_span(
    worker: WorkerProcess, anthropic: FakeAnthropic, receiver: OtlpReceiver, client: Client, results: ResultWatch
) -> None:
    anthropic.script(Step.fault(529), Step.reply())
    body = traced_job()
    run_id = body["data"]["runId"]
    await publish_job(client, body, headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"})

    assert (await results.one(run_id, within=20))["status"] == "completed"
    spans = await receiver.wait_for(lambda spans: len([s for s in spans if s.trace_id == TRACE_ID]) >= 3)
    (job_span,) = job_spans(spans, run_id)
    first, second = children(spans, job_span)
    assert first.name == second.name == "chat claude-sonnet-4-6"
    assert first.kind == second.kind == SpanKind.SPAN_KIND_CLIENT
    assert first.failed
    assert first.attributes["error.type"] == first.attributes["maschina.error_code"] == "provider_unavailable"
    assert "gen_ai.usage.output_tokens" not in first.attributes
    assert not second.failed
    assert second.attributes["gen_ai.usage.output_tokens"] > 0
    assert first.end_ns <= second.start_ns
    assert job_span.attributes["maschina.status"] == "completed"
    assert_nothing_secret(spans)


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-not-a-trace-id-01",
        f"00-{'0' * 32}-{PARENT_SPAN_ID}-01",  # an all-zero trace id is invalid
        f"ff-{TRACE_ID}-{PARENT_SPAN_ID}-01",  # version ff is forbidden
    ],
)
async def test_a_malformed_traceparent_starts_a_new_trace_and_the_job_completes(
    traceparent: str,
    worker: WorkerProcess,
    receiver: OtlpReceiver,
    client: Client,
    results: ResultWatch,
) -> None:
    body = traced_job()
    run_id = body["data"]["runId"]
    await publish_job(client, body, headers={"traceparent": traceparent, "tracestate": "\x00garbage"})

    assert (await results.one(run_id, within=20))["status"] == "completed"
    spans = await receiver.wait_for(lambda spans: len(job_spans(spans, run_id)) == 1)
    (job_span,) = job_spans(spans, run_id)
    assert job_span.parent_span_id == ""
    assert job_span.trace_id not in (TRACE_ID, "0" * 32)
    version, trace_id, span_id, flags = (await stored_headers(client, run_id))["traceparent"].split("-")
    assert (version, trace_id, span_id) == ("00", job_span.trace_id, job_span.span_id)
    assert int(flags, 16) & 1  # sampled (a new trace's id is also flagged random: 03)


async def test_a_malformed_tracestate_is_dropped_and_never_quoted(
    worker: WorkerProcess, receiver: OtlpReceiver, client: Client, results: ResultWatch
) -> None:
    body = traced_job()
    run_id = body["data"]["runId"]
    garbage = "vendor=ok,not a member: " + MESSAGE  # a member that is not `key=value`, quoting the message
    await publish_job(
        client, body, headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01", "tracestate": garbage}
    )

    assert (await results.one(run_id, within=20))["status"] == "completed"
    spans = await receiver.wait_for(lambda spans: len(job_spans(spans, run_id)) == 1)
    (job_span,) = job_spans(spans, run_id)
    assert job_span.parent_span_id == PARENT_SPAN_ID  # the traceparent still counts
    assert "tracestate" not in await stored_headers(client, run_id)
    assert MESSAGE[:20] not in worker.log_path.read_text()


async def test_a_refused_job_records_its_error_code_on_the_job_span(
    worker: WorkerProcess, receiver: OtlpReceiver, client: Client, results: ResultWatch
) -> None:
    body = traced_job(tier="m1", model="claude-opus-4-6")
    run_id = body["data"]["runId"]
    await publish_job(client, body, headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"})

    assert (await results.one(run_id, within=20))["status"] == "rejected"
    spans = await receiver.wait_for(lambda spans: len(job_spans(spans, run_id)) == 1)
    (job_span,) = job_spans(spans, run_id)
    assert job_span.failed
    assert job_span.attributes["maschina.status"] == "rejected"
    assert job_span.attributes["maschina.error_code"] == "model_not_allowed"
    assert job_span.attributes["maschina.billed_tokens"] == 0
    assert children(spans, job_span) == []


async def test_a_job_out_of_deliveries_ends_in_its_own_trace(
    nats_server: NatsServer, anthropic: FakeAnthropic, receiver: OtlpReceiver, tmp_path: Path, client: Client
) -> None:
    # Every delivery taken by a replica that dies (none running); the next worker handles the advisory.
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"}
    settings = worker_settings(nats_server, ack_wait_secs=1.0, max_deliver=2)
    seq = await exhaust_with_no_worker(client, settings, headers)
    process = traced_worker(
        nats_server, anthropic, receiver, tmp_path, WORKER_ACK_WAIT_SECS="1", WORKER_MAX_DELIVER="2"
    )
    try:
        await process.start()
        spans = await receiver.wait_for(lambda spans: any(s.trace_id == TRACE_ID for s in spans))
    finally:
        await process.close()
    (job_span,) = [span for span in spans if span.trace_id == TRACE_ID]
    assert job_span.parent_span_id == PARENT_SPAN_ID
    assert job_span.attributes["messaging.message.id"] == str(seq)
    assert job_span.attributes["messaging.nats.message.delivery_count"] == 2
    assert job_span.attributes["maschina.status"] == "failed"
    assert job_span.attributes["maschina.error_code"] == "max_deliveries_exceeded"
    run_id = job_span.attributes["maschina.run_id"]
    stored = await stored_headers(client, run_id)
    assert stored["traceparent"] == f"00-{TRACE_ID}-{job_span.span_id}-01"


async def test_a_job_the_sampler_drops_still_carries_its_trace_on(
    nats_server: NatsServer,
    anthropic: FakeAnthropic,
    receiver: OtlpReceiver,
    tmp_path: Path,
    client: Client,
    results: ResultWatch,
) -> None:
    process = traced_worker(nats_server, anthropic, receiver, tmp_path, OTEL_TRACES_SAMPLER="always_off")
    try:
        await process.start()
        body = traced_job()
        run_id = body["data"]["runId"]
        await publish_job(client, body, headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"})
        assert (await results.one(run_id, within=20))["status"] == "completed"
        version, trace_id, span_id, flags = (await stored_headers(client, run_id))["traceparent"].split("-")
        # SIGTERM: the worker exports whatever it has buffered before it exits.
        assert await process.terminate() == 0
    finally:
        await process.close()
    # Same trace, a span id of the worker's own, not sampled; and nothing was exported.
    assert (version, trace_id, flags) == ("00", TRACE_ID, "00")
    assert span_id not in (PARENT_SPAN_ID, "0" * 16)
    assert receiver.received == 0
