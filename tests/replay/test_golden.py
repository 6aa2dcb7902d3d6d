"""Golden results: the recorded job payloads replayed, and the same payloads through NATS and the real worker.

The payloads are `tests/fixtures/jobs/*.json` and the demo's samples (which add dead letters). Both paths
must give exactly the results in `tests/fixtures/golden/replay.json`, timestamps and worker id aside.
After an intended change, rewrite the golden file with `UPDATE_GOLDEN=1 pytest tests/replay/test_golden.py`
and review its diff.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from catalog import default_catalog
from tests.replay.support import normalised, replay_cli
from worker.commands.demo import SAMPLES
from worker.contract import JOB_SUBJECT
from worker.embedded import NatsServer
from worker.payloads import Payload, read_payloads
from worker.providers.recorded import packaged_recordings, recorded_providers
from worker.service import Worker
from worker.settings import Settings

pytestmark = pytest.mark.nats

FIXTURES = Path(__file__).parents[1] / "fixtures"
JOB_FILES = sorted((FIXTURES / "jobs").glob("[0-9]*.json"))
GOLDEN = FIXTURES / "golden" / "replay.json"
INPUTS = [*JOB_FILES, SAMPLES]

Outcomes = dict[str, dict[str, Any]]


def label(source: str) -> str:
    """`…/jobs/01-m5-sonnet.json` → `01-m5-sonnet.json`; `…/demo.jsonl:15` → `demo.jsonl:15`."""
    return Path(source).name


def payloads() -> list[Payload]:
    return [payload for path in INPUTS for payload in read_payloads(path)]


def golden() -> Outcomes:
    outcomes: Outcomes = orjson.loads(GOLDEN.read_bytes())
    return outcomes


def test_the_golden_set_covers_every_fixture_and_each_verdict() -> None:
    outcomes = golden()
    assert len(JOB_FILES) >= 20
    assert list(outcomes) == [label(p.source) for p in payloads()]
    statuses = {o["result"]["status"] if "result" in o else "dead-lettered" for o in outcomes.values()}
    assert statuses == {"completed", "rejected", "failed", "dead-lettered"}


def test_replayed_payloads_give_the_golden_results(capsys: pytest.CaptureFixture[str]) -> None:
    replayed = replay_cli(capsys, *INPUTS)
    assert replayed.code == 0
    dead = {label(d["source"]): {"reason": d["reason"], "detail": d["detail"]} for d in replayed.dead_letters}
    results = iter(replayed.results)
    outcomes: Outcomes = {}
    for payload in payloads():
        name = label(payload.source)
        outcomes[name] = {"deadLetter": dead[name]} if name in dead else {"result": normalised(next(results))}
    assert next(results, None) is None

    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_bytes(orjson.dumps(outcomes, option=orjson.OPT_INDENT_2) + b"\n")
    assert outcomes == golden()


@pytest.fixture
async def worker(nats_server: NatsServer) -> AsyncIterator[Worker]:
    settings = Settings.from_env({}, nats_url=(nats_server.url,), http_port=0, worker_id="golden-worker")
    worker = Worker(settings, providers=recorded_providers(packaged_recordings()), catalog=default_catalog())
    await worker.start()
    yield worker
    await worker.stop()


@pytest.fixture
async def client(nats_server: NatsServer) -> AsyncIterator[Client]:
    connection = await nats.connect(nats_server.url)
    yield connection
    await connection.close()


async def test_the_same_payloads_through_nats_and_the_worker_give_the_golden_results(
    worker: Worker, client: Client
) -> None:
    sent = payloads()
    results: dict[str, dict[str, Any]] = {}
    dead: dict[int, dict[str, str]] = {}
    all_in = asyncio.Event()

    def check() -> None:
        if len(results) + len(dead) == len(sent):
            all_in.set()

    async def on_result(msg: Msg) -> None:
        result = orjson.loads(msg.data)
        results[result["runId"]] = normalised(result)
        check()

    async def on_dead_letter(msg: Msg) -> None:
        headers = msg.headers or {}
        dead[int(headers["Maschina-Stream-Seq"])] = {
            "reason": headers["Maschina-Dlq-Reason"],
            "detail": headers["Maschina-Dlq-Detail"],
        }
        check()

    await client.subscribe("maschina.results.agent.execute.>", cb=on_result)
    await client.subscribe("maschina.dlq.agent.execute", cb=on_dead_letter)
    js = client.jetstream()
    seqs = [(await js.publish(JOB_SUBJECT, payload.body)).seq for payload in sent]
    await asyncio.wait_for(all_in.wait(), 30)

    expected = golden()
    outcomes: Outcomes = {}
    for payload, seq in zip(sent, seqs, strict=True):
        name = label(payload.source)
        if seq in dead:
            outcomes[name] = {"deadLetter": dead[seq]}
        else:
            run_id = expected[name]["result"]["runId"]
            outcomes[name] = {"result": results[run_id]}
    assert outcomes == expected
