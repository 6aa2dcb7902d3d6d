"""`agent-worker record` beside a real `agent-worker run` replica, then `agent-worker replay` of what it wrote.

Real nats-server, the real worker as a child process with the fake Anthropic server over real HTTP, signed
jobs published with JetStream as the API does. Figures asserted: every published message recorded byte for
byte with its headers, every job handled exactly once by the worker (one stored result or one dead letter,
the jobs stream empty), and the replayed recording billing exactly what the worker stored.
"""

from __future__ import annotations

import hashlib
import hmac
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client

from testkit import FakeAnthropic, FakeConfig
from testkit.process import WorkerProcess
from tests.record.cli import Cli
from tests.worker.support import ResultWatch, dead_letters, job, stored_count, wait_until_acked
from worker.contract import JOB_SUBJECT
from worker.door import DeadLetter, Door
from worker.embedded import NatsServer
from worker.job import Job
from worker.payloads import read_payloads

pytestmark = pytest.mark.system

SIGNING_KEY = b"record-test-signing-key"
SECRET_PROMPT = "Never-recorded system prompt: the launch codes are 0000."
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
SECRET_MESSAGE = "Never-recorded message: ünïcödé “quotes” and \n newlines 𝄞"


def signed(body: bytes, **extra: str) -> dict[str, str]:
    return {"Maschina-Signature": "sha256=" + hmac.new(SIGNING_KEY, body, hashlib.sha256).hexdigest(), **extra}


@dataclass(frozen=True, slots=True)
class Published:
    body: bytes
    headers: dict[str, str]


def traffic() -> list[Published]:
    """Completed, rejected (gate and validation) and dead-lettered jobs, odd headers, a body that is not UTF-8."""
    bodies: list[bytes] = [
        orjson.dumps(job(systemPrompt=SECRET_PROMPT, inputPayload={"message": SECRET_MESSAGE})),
        orjson.dumps(job(tier="m1", model="claude-haiku-4-5-20251001", systemPrompt=SECRET_PROMPT)),
        orjson.dumps(job(tier="m1", model="claude-opus-4-6")),  # model_not_allowed
        orjson.dumps(job(tier="no-such-tier")),  # unknown_tier
        orjson.dumps(job(agentId="")),  # invalid_job
        orjson.dumps(job(inputPayload={"notes": [SECRET_MESSAGE, {"deep": SECRET_PROMPT}]})),
        b"\xef\xbb\xbf" + orjson.dumps(job()),  # a byte-order mark: not_json
        b"\xff\xfe not UTF-8 \x80",  # not_json, recorded as base64
    ]
    published = [Published(body, signed(body)) for body in bodies]
    odd = orjson.dumps(job())
    published.append(Published(odd, signed(odd, **{"X-Long": "v" * 2000, "X-Empty": "", "traceparent": TRACEPARENT})))
    tampered = orjson.dumps(job())
    published.append(Published(tampered, signed(tampered + b" ")))  # bad_signature
    return published


@pytest.fixture
async def anthropic() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(FakeConfig()) as fake:
        yield fake


@pytest.fixture
async def worker(nats_server: NatsServer, anthropic: FakeAnthropic, tmp_path: Path) -> AsyncIterator[WorkerProcess]:
    settings = {
        "NATS_URL": nats_server.url,
        "ANTHROPIC_API_KEY": "sk-test",
        "ANTHROPIC_BASE_URL": anthropic.base_url,
        "WORKER_SIGNING_KEY": SIGNING_KEY.decode(),
    }
    process = WorkerProcess("worker-record", settings, tmp_path)
    await process.start()
    yield process
    await process.close()


@pytest.fixture
async def recorders(nats_server: NatsServer) -> AsyncIterator[list[Cli]]:
    started: list[Cli] = []
    yield started
    for cli in started:
        cli.kill()


async def start_recorder(nats_server: NatsServer, out: Path, *extra: str) -> Cli:
    cli = await Cli.start("record", "--out", str(out), *extra, env={"NATS_URL": nats_server.url})
    await cli.stderr_line("Ctrl-C to stop")  # subscribed: everything published from here on is captured
    return cli


async def test_record_captures_every_job_while_the_worker_handles_each_once_and_replay_bills_the_same(
    nats_server: NatsServer,
    worker: WorkerProcess,
    anthropic: FakeAnthropic,
    client: Client,
    results: ResultWatch,
    recorders: list[Cli],
    tmp_path: Path,
) -> None:
    plain, redacted = tmp_path / "jobs.jsonl", tmp_path / "redacted.jsonl"
    recorders += [await start_recorder(nats_server, plain), await start_recorder(nats_server, redacted, "--redact")]
    published = traffic()
    for message in published:
        await client.jetstream().publish(JOB_SUBJECT, message.body, headers=message.headers)

    # Runs as the door reads them, but for the last message, whose signature the worker refuses.
    verdicts = [Door().open(message.body) for message in published[:-1]]
    run_ids = [verdict.ref.run_id for verdict in verdicts if not isinstance(verdict, DeadLetter)]
    stored = await results.wait_for(run_ids, within=60)
    await wait_until_acked(client, within=30)
    for recorder in recorders:
        recorder.process.send_signal(signal.SIGTERM)
    codes = [await recorder.finish() for recorder in recorders]
    assert [code for code, _, _ in codes] == [0, 0], codes
    for _, _, err in codes:
        assert f"{len(published)} messages (" in err
        assert "dropped" not in err

    # The worker: every job once. Seven results stored once each, three dead letters, nothing left in the stream.
    assert len(run_ids) == 7
    assert [await stored_count(client, run_id) for run_id in run_ids] == [1] * 7
    assert sorted((m.headers or {})["Maschina-Dlq-Reason"] for m in await dead_letters(client)) == [
        "bad_signature",
        "not_json",
        "not_json",
    ]
    assert {r["status"] for r in stored.values()} == {"completed", "rejected"}

    # The recording: every message, in order, byte for byte, with its headers.
    assert plain.stat().st_mode & 0o777 == 0o600  # prompts inside: its owner's only
    recorded = list(read_payloads(plain))
    assert [(p.body, dict(p.headers or {})) for p in recorded] == [(m.body, m.headers) for m in published]
    assert all(line.startswith(b'{"format":"agent-worker.recorded-job.v1"') for line in plain.read_bytes().splitlines())

    # Replayed with the signing key, against the same fake: the same bills, the same dead letters.
    replay = await Cli.start(
        "replay",
        "--live",
        str(plain),
        env={
            "WORKER_SIGNING_KEY": SIGNING_KEY.decode(),
            "ANTHROPIC_API_KEY": "sk-test",
            "ANTHROPIC_BASE_URL": anthropic.base_url,
        },
    )
    code, out, err = await replay.finish()
    assert code == 0, err
    replayed = {r["runId"]: r for r in map(orjson.loads, out.splitlines())}
    assert set(replayed) == set(run_ids)
    for run_id in run_ids:
        assert bill(replayed[run_id]) == bill(stored[run_id])
    dead = [orjson.loads(line)["deadLetter"]["reason"] for line in err.splitlines() if '"deadLetter"' in line]
    assert sorted(dead) == ["bad_signature", "not_json", "not_json"]

    # The redacted recording: the same messages, no prompt text, the same sizes, no signature.
    check_redacted(published, list(read_payloads(redacted)), redacted.read_text())


def bill(result: dict[str, Any]) -> tuple[Any, ...]:
    return result["status"], result["model"], result["usage"], result["billing"], result["error"]


def check_redacted(published: list[Published], redacted: list[Any], text: str) -> None:
    assert len(redacted) == len(published)
    for fragment in (SECRET_PROMPT, SECRET_MESSAGE, "launch codes", "ünïcödé"):
        assert fragment not in text
        assert orjson.dumps(fragment)[1:-1].decode() not in text
    assert "Maschina-Signature" not in text
    door = Door()
    for original, copy in zip(published, redacted, strict=True):
        assert "Maschina-Signature" not in (copy.headers or {})
        assert {k: v for k, v in original.headers.items() if k != "Maschina-Signature"} == copy.headers
        before, after = door.open(original.body), door.open(copy.body)
        assert type(before) is type(after)
        if isinstance(before, Job):
            assert isinstance(after, Job)
            assert sizes(after) == sizes(before)
            assert after.ref == before.ref
            assert after.system_prompt != before.system_prompt
            assert after.user_message != before.user_message
        else:
            assert getattr(after, "reason", None) == getattr(before, "reason", None)
            assert getattr(after, "code", None) == getattr(before, "code", None)


def sizes(job: Job) -> tuple[int, ...]:
    prompt = job.system_prompt or ""
    return len(prompt), len(prompt.encode()), len(job.user_message), len(job.user_message.encode())
