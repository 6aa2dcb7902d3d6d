"""Issue 11: the hostile suite at the NATS level, property-based (hypothesis), against one real replica.

Each example publishes one message over the raw protocol — random header names, values and counts, bytes
that are not UTF-8, bodies from valid jobs (with hostile prompts, huge fields, big integers) to random bytes
of any size up to and past the server's `max_payload` (64 KiB here) — after scripting the fake Anthropic's
answer to it: a reply with random usage (negative, huge, not integers), a spoiled answer, an error status
whose message quotes the prompt, garbage, a dropped connection. Then it waits until the consumer is idle.

Invariants, checked after every example:
- the replica process never exits (the same pid serves every example, /healthz answers 200);
- every message the server accepted ends in exactly one stored result or one dead letter (a message the
  server refuses at publish — too large with its headers — never reaches the worker and is counted apart);
- no stored bill is negative or above what the provider reported × the model's multiplier;
- no secret (the API key) and no 20 consecutive characters of the job's system prompt or user message in the
  result (outside `outputPayload`) or the dead letter's headers; and, at the end, none in the replica's
  stdout/stderr or /metrics.

`make test` runs `AGENT_WORKER_FUZZ_EXAMPLES` (default 40) examples; `make fuzz` runs thousands, and
writes the outcome table to `AGENT_WORKER_FUZZ_REPORT` (docs/reliability.md, "Hostile input").
Header names starting with `Nats-` are left out: JetStream acts on them when the message is published (a
`Nats-Expected-Stream` of another stream is refused, a repeated `Nats-Msg-Id` is dropped), before any job exists.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.js.errors
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client

from testkit import Step
from tests.hostile.harness import API_KEY, Stack, start_stack
from tests.hostile.raw import header_block, raw_publish
from worker.contract import DLQ_STREAM, JOB_SUBJECT, RESULTS_STREAM

pytestmark = pytest.mark.system

EXAMPLES = int(os.environ.get("AGENT_WORKER_FUZZ_EXAMPLES", "40"))
REPORT = os.environ.get("AGENT_WORKER_FUZZ_REPORT", "")
MAX_PAYLOAD = 64 * 1024
MAX_MULTIPLIER = 15  # Opus, the dearest Anthropic model of the catalog
_SETTLE_SECS = 60.0

# --- what is published --------------------------------------------------------------------------------------

_MODELS = ["claude-haiku-4-5-20251001", "claude-sonnet-4-6", "claude-opus-4-6"]
_TIERS = ["enterprise", "enterprise", "internal", "m10", "m5", "m1", "access", "M5", ""]
_HOSTILE_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from('"\\\n\r\t{}[]:,é€🙂\u202e'),
    min_size=0,
    max_size=120,
)
_HEADER_NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,24}", fullmatch=True).filter(
    lambda name: not name.lower().startswith("nats-")
) | st.sampled_from(["Status", "Description", "status", "STATUS", "traceparent", "tracestate", "Maschina-Signature"])
_HEADER_VALUE = (
    st.sampled_from(["pending", "100", "404", "408", "409", "500", "503", "", "Idle Heartbeat", "No Messages"])
    | st.text(st.characters(codec="utf-8", exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=80)
    | st.integers(1, 4000).map(lambda n: "v" * n)
)
_SHORT_VALUE = st.sampled_from(["404", "408", "pending", "x", "Status"])
_RAW_BYTES = st.binary(max_size=40).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b""))


@st.composite
def headers(draw: st.DrawFn) -> tuple[str, bytes]:
    """(kind, header block) exactly as sent: none, text headers, headers with raw bytes, or a forged status line."""
    kind = draw(st.sampled_from(["none", "text", "bytes", "status-line", "many"]))
    if kind == "none":
        return kind, b""
    if kind == "many":  # hundreds of short headers
        pairs = [(f"X-Many-{n}".encode(), draw(_SHORT_VALUE).encode()) for n in range(draw(st.integers(100, 400)))]
    else:
        pairs = [(draw(_HEADER_NAME).encode(), draw(_HEADER_VALUE).encode()) for _ in range(draw(st.integers(1, 12)))]
    if kind == "bytes":
        for _ in range(draw(st.integers(1, 3))):
            name = b"X-" + draw(_RAW_BYTES).replace(b":", b"").replace(b" ", b"")
            pairs.append((name, draw(_RAW_BYTES)))
    status_line = b"NATS/1.0"
    if kind == "status-line":
        status_line += b" " + draw(st.sampled_from([b"404 No Messages", b"408", b"409 Consumer Deleted", b"100"]))
    return kind, header_block(*pairs, status_line=status_line)


@dataclass(repr=False)
class Job:
    kind: str
    body: bytes
    run_id: str | None = None
    texts: list[str] = field(default_factory=list)
    """The system prompt and user message, for the fragment check."""
    echoed: list[str] = field(default_factory=list)
    """The job's fields a result echoes (model, tier, ids): text they share with the prompt is no leak."""
    default_input_tokens: int = 0
    """What the fake reports as input for this job when it answers without a script."""

    def __repr__(self) -> str:  # hypothesis prints it with every failing example; a body may be 64 KiB
        return f"Job({self.kind!r}, {len(self.body)} bytes: {self.body[:300]!r})"


def _job_json(job: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(job)
    except TypeError:  # an integer beyond 64 bits: the standard library writes it exactly
        return json.dumps(job, ensure_ascii=False).encode()


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    kind = draw(st.sampled_from(["job", "job", "job", "huge-field", "bytes", "near-max", "past-max", "mutated"]))
    run_id = f"fuzz-{uuid.uuid4().hex}"
    if kind in ("bytes", "near-max", "past-max"):
        size = {
            "bytes": draw(st.integers(0, 2000)),
            "near-max": MAX_PAYLOAD - draw(st.integers(0, 400)),
            "past-max": MAX_PAYLOAD + draw(st.integers(1, 4000)),
        }[kind]
        filler = random.Random(draw(st.integers(0, 2**32))).randbytes(size)
        return Job(kind, filler if kind == "bytes" else b"{" + filler[1:])
    marker = uuid.uuid4().hex
    system = None if draw(st.booleans()) else f"SYSTEM {marker} " + draw(_HOSTILE_TEXT) + " end of the system prompt"
    message = f"MESSAGE {marker} " + draw(_HOSTILE_TEXT) + " end of the user message"
    data: dict[str, Any] = {
        "runId": run_id,
        "agentId": "agent-fuzz",
        "userId": "user-fuzz",
        "tier": draw(st.sampled_from(_TIERS)),
        # Mostly a model the tier may use, so most jobs reach the provider and its hostile answers.
        "model": draw(_HOSTILE_TEXT) if draw(st.integers(0, 5)) == 0 else draw(st.sampled_from([*_MODELS, None, ""])),
        "systemPrompt": system,
        "inputPayload": {"message": message, "n": draw(st.integers(-(2**80), 2**80))},
        "timeoutSecs": draw(st.sampled_from([5, 10, 30])),
        "maxTokens": draw(st.integers(1, 10**20)),
    }
    if kind == "huge-field":
        field_name = draw(st.sampled_from(["model", "tier", "agentId", "userId", "systemPrompt"]))
        data[field_name] = "h" * draw(st.integers(300, 60_000))
        if field_name == "systemPrompt":
            system = data[field_name]  # the prompt the worker sees, for the fragment and bill checks
    envelope: dict[str, Any] = {"id": str(uuid.uuid4()), "replyTo": f"_INBOX.fuzz.{marker}", "data": data}
    body = _job_json(envelope if draw(st.booleans()) else data)
    if kind == "mutated":
        raw = bytearray(body)
        for _ in range(draw(st.integers(1, 4))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        body = bytes(raw)
    texts = [text for text in (system, message) if text]
    chars = sum(len(text) for text in texts) if isinstance(data.get("systemPrompt"), str) else len(message)
    echoed = [value for key in ("model", "tier", "agentId", "userId") if isinstance(value := data.get(key), str)]
    return Job(kind, body, run_id, texts, echoed, max(1, math.ceil(chars / 4)))


_USAGE_VALUE = st.integers(0, 5000) | st.sampled_from([-1, 2**63 - 1, 10**9 + 1, None, 1.5, "12"])


@st.composite
def answers(draw: st.DrawFn) -> tuple[str, Step | None]:
    """The fake's answer to this job's first call (later calls, after a retry, get its ordinary answer)."""
    kind = draw(st.sampled_from(["default", "reply", "usage", "spoiled", "fault", "garbage", "drop", "truncated"]))
    if kind == "default":
        return kind, None
    if kind == "reply":
        return kind, Step.reply(draw(_HOSTILE_TEXT))
    if kind == "usage":
        keys = ["input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"]
        usage = {key: draw(_USAGE_VALUE) for key in keys if draw(st.booleans())}
        return kind, Step.reply("usage under test", usage=usage)
    if kind == "spoiled":
        patch: dict[str, Any] = draw(
            st.sampled_from(
                [
                    {"content": [{"type": "text"}]},
                    {"content": []},
                    {"content": "not a list"},
                    {"usage": None},
                    {"usage": {"input_tokens": "12", "output_tokens": 3}},
                    {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
                ]
            )
        )
        return kind, Step.reply("spoiled", patch=patch)
    if kind == "fault":
        status = draw(st.sampled_from([400, 401, 403, 404, 413, 429, 500, 502, 503, 529]))
        return kind, Step.fault(status, message=draw(st.sampled_from(["{prompt}", "{prompt} and more", "plain"])))
    if kind == "garbage":
        return kind, Step.garbage(draw(st.sampled_from([None, "", "<html>proxy</html>", '{"id": 1}', "[]"])))
    return kind, Step.drop() if kind == "drop" else Step.truncated()


# --- the replica and the bookkeeping ------------------------------------------------------------------------


def prompt_windows(job: Job) -> set[str]:
    """Every 20 characters of the job's prompts, raw and as JSON escapes them, that no echoed field also holds."""
    echoed = " ".join([*job.echoed, *(orjson.dumps(value).decode() for value in job.echoed)])
    escaped = [orjson.dumps(prompt).decode()[1:-1] for prompt in job.texts]
    return {window for text in [*job.texts, *escaped] for window in _fragments(text) if window not in echoed}


@dataclass(repr=False)
class Run:
    stack: Stack
    loop: asyncio.AbstractEventLoop
    nc: Client
    pid: int
    windows: dict[str, set[str]] = field(default_factory=dict)
    """Each run's prompt windows, by runId (a line about a run is checked against that run's prompt)."""
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    headers: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    refused: int = 0
    lost: int = 0
    duplicated: int = 0
    started: float = field(default_factory=time.monotonic)

    def __repr__(self) -> str:  # hypothesis prints it with every failing example
        return f"Run(sent={self.sent}, refused={self.refused}, pid={self.pid})"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    stack = start_stack(
        Path(tmp_path_factory.mktemp("fuzz")),
        server_config=f"max_payload: {MAX_PAYLOAD}",
        WORKER_MAX_DELIVER="3",
        WORKER_ACK_WAIT_SECS="10",
        WORKER_RETRY_BASE_SECS="0.01",
        WORKER_RETRY_CAP_SECS="0.02",
        WORKER_RETRY_MAX_CALLS="2",
        WORKER_REDELIVERY_BASE_SECS="0.05",
        WORKER_REDELIVERY_CAP_SECS="0.1",
    )
    loop = asyncio.new_event_loop()
    try:
        nc = loop.run_until_complete(nats.connect(stack.server.url))
        state = Run(stack, loop, nc, stack.worker.pid)
        yield state
        loop.run_until_complete(_final_checks(state))
        _report(state)
        loop.run_until_complete(nc.close())
    finally:
        loop.close()
        stack.close()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(job=jobs(), header=headers(), answer=answers())
def test_hostile_messages_never_take_the_replica_down(
    run: Run, job: Job, header: tuple[str, bytes], answer: tuple[str, Step | None]
) -> None:
    run.loop.run_until_complete(_one_example(run, job, header, answer))


async def _one_example(run: Run, job: Job, header: tuple[str, bytes], answer: tuple[str, Step | None]) -> None:
    stack, nc = run.stack, run.nc
    header_kind, block = header
    answer_kind, step = answer
    await stack.provider.reset()
    if step is not None:
        if step.message is not None and "{prompt}" in step.message:
            step = Step.fault(step.status, message=step.message.replace("{prompt}", " ".join(job.texts)))
        await stack.provider.script(step)
    before = await _counts(nc)
    try:
        ack = await raw_publish(stack.server.port, JOB_SUBJECT, block, job.body)
    except RuntimeError:
        ack = {"error": "refused"}  # -ERR: too large with its headers; the connection was the publisher's
    if "error" in ack:
        assert len(job.body) + len(block) > MAX_PAYLOAD or header_bytes_over_limit(block), ack
        run.refused += 1
        run.outcomes[(job.kind, "refused at publish")] += 1
        return
    run.sent += 1
    run.headers[header_kind] += 1
    run.answers[answer_kind] += 1
    windows = prompt_windows(job)
    run.windows[job.run_id or f"unnamed-{run.sent}"] = windows
    results, letters = await _settle(nc, before)
    assert stack.worker.alive, f"the replica exited:\n{stack.worker.log_tail()}"
    assert stack.worker.pid == run.pid
    outcomes = len(results) + len(letters)
    run.lost += outcomes == 0
    run.duplicated += max(0, outcomes - 1)
    assert outcomes == 1, f"{outcomes} outcomes for one message: {results} {letters}"
    if results:
        [result] = results
        if job.run_id is not None and job.kind != "mutated":
            assert result["runId"] == job.run_id
        code = (result.get("error") or {}).get("code")
        run.outcomes[(job.kind, f"{result['status']}" + (f"/{code}" if code else ""))] += 1
        _check_bill(result, job, step)
        shown = {key: value for key, value in result.items() if key != "outputPayload"}
        _assert_clean(orjson.dumps(shown).decode(), windows, "the stored result")
    else:
        [(letter_headers, _)] = letters
        truncated = " (cut)" if "Maschina-Dlq-Truncated" in letter_headers else ""
        run.outcomes[(job.kind, f"dead letter: {letter_headers.get('Maschina-Dlq-Reason')}{truncated}")] += 1
        _assert_clean(orjson.dumps(letter_headers).decode(), windows, "the dead letter's headers")


def header_bytes_over_limit(block: bytes) -> bool:
    return len(block) > 64 * 1024  # JetStream's own limit on a message's headers


async def _counts(nc: Client) -> tuple[int, int]:
    js = nc.jetstream()
    results = (await js.stream_info(RESULTS_STREAM)).state.last_seq
    try:
        letters = (await js.stream_info(DLQ_STREAM)).state.last_seq
    except nats.js.errors.NotFoundError:
        letters = 0
    return results, letters


async def _settle(
    nc: Client, before: tuple[int, int]
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, str], bytes]]]:
    """Every result and dead letter stored since `before`, once there is one and the consumer is idle."""
    js = nc.jetstream()
    deadline = time.monotonic() + _SETTLE_SECS
    while True:
        now = await _counts(nc)
        consumer = await js.consumer_info("MASCHINA_JOBS", "agent-worker")
        idle = consumer.num_pending == 0 and consumer.num_ack_pending == 0
        if idle and now != before:
            break
        if time.monotonic() > deadline:
            break  # lost: the assertion on the outcomes says so
        await asyncio.sleep(0.01)
    results = [orjson.loads((await js.get_msg(RESULTS_STREAM, seq)).data or b"{}") for seq in _new(before[0], now[0])]
    letters = []
    for seq in _new(before[1], now[1]):
        message = await js.get_msg(DLQ_STREAM, seq)
        letters.append((dict(message.headers or {}), message.data or b""))
    return results, letters


def _new(before: int, now: int) -> range:
    return range(before + 1, now + 1)


def _check_bill(result: dict[str, Any], job: Job, step: Step | None) -> None:
    """0 <= billed <= what the provider could have reported for this job × the dearest multiplier."""
    billing = result["billing"]
    billed = billing["billedTokens"]
    assert isinstance(billed, int)
    assert billed >= 0
    assert billing["billedInputTokens"] >= 0
    assert billing["billedOutputTokens"] >= 0
    reported_in, reported_out = job.default_input_tokens, 10_000  # the fake's ordinary answer: a few words
    if step is not None and step.usage:
        counts = [value for value in step.usage.values() if isinstance(value, int) and value >= 0]
        reported_in += sum(counts)
        reported_out = max(reported_out, *counts) if counts else reported_out
    bound = math.ceil(reported_in * MAX_MULTIPLIER) + math.ceil(reported_out * MAX_MULTIPLIER)
    assert billed <= bound, f"billed {billed}, above what the provider reported x {MAX_MULTIPLIER} ({bound})"


def _fragments(text: str, width: int = 20) -> Iterator[str]:
    for start in range(len(text) - width + 1):
        window = text[start : start + width]
        if len(set(window)) >= 6:  # a run of one repeated character is no evidence of a leak
            yield window


def _assert_clean(text: str, windows: set[str], where: str) -> None:
    for fragment in _fragments(API_KEY):
        assert fragment not in text, f"{where} holds a piece of the API key"
    found = {text[i : i + 20] for i in range(len(text) - 19)} & windows
    assert not found, f"{where} holds 20 characters of the prompt: {sorted(found)[:3]}"


async def _final_checks(run: Run) -> None:
    stack = run.stack
    assert stack.worker.alive
    assert stack.worker.pid == run.pid
    async with httpx.AsyncClient(timeout=5.0) as client:
        health = await client.get(f"http://127.0.0.1:{stack.worker.http_port}/healthz")
        metrics = (await client.get(f"http://127.0.0.1:{stack.worker.http_port}/metrics")).text
    assert health.status_code == 200
    every: set[str] = set().union(*run.windows.values())
    _assert_clean(metrics, every, "/metrics")
    # A log line about a run is checked against that run's prompt: hypothesis reuses a value it drew, so one
    # job's prompt may hold another job's model, which is echoed (bounded) in that other job's lines.
    output = stack.output()
    for line in output.splitlines():
        try:
            run_id = orjson.loads(line).get("runId")
        except (orjson.JSONDecodeError, AttributeError):
            run_id = None
        _assert_clean(line, run.windows.get(run_id, every) if isinstance(run_id, str) else every, "a log line")
    for event in ("fetch_loop_error", "pulled_message_not_handled", "fetch_loop_ended", "nats_closed"):
        assert f'"event":"{event}"' not in output, f"the replica logged {event}"


def _report(run: Run) -> None:
    seconds = time.monotonic() - run.started
    lines = [
        f"hostile suite: {run.sent} messages accepted by the server and {run.refused} refused at publish, "
        f"in {seconds:.0f} s; lost {run.lost}, duplicated {run.duplicated}, replica restarts 0 (pid {run.pid})",
        "",
        "| what was published | outcome | count |",
        "|---|---|---:|",
        *(f"| {kind} | {outcome} | {count} |" for (kind, outcome), count in sorted(run.outcomes.items())),
        "",
        "headers: " + ", ".join(f"{kind} {count}" for kind, count in sorted(run.headers.items())),
        "provider answers: " + ", ".join(f"{kind} {count}" for kind, count in sorted(run.answers.items())),
    ]
    text = "\n".join(lines)
    print("\n" + text)
    if REPORT:
        Path(REPORT).write_text(text + "\n")
