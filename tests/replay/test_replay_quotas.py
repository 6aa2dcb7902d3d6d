"""`agent-worker replay` with WORKER_QUOTAS=on: the pipeline's quota step, on an in-memory usage store."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.replay.support import anthropic_default, replay_cli
from worker.providers.exchange import write_recording

pytestmark = pytest.mark.unit

DEFAULT_CATALOG = Path(__file__).parents[2] / "catalog" / "default.toml"
# Sonnet (x3) answering 1,000 in / 344 out: each run bills 4,032. A job with the message "Hello" and the
# default maxTokens 4,096 may bill at most (5 + 64) x 3 + 4,096 x 3 = 12,495.
BILL, HOLD = 4_032, 12_495
# Room for three runs in a row, the third exactly at the quota: 2 bills settled + 1 hold.
QUOTA = 2 * BILL + HOLD


def job(run_id: str, user: str = "user-1") -> bytes:
    data = {"runId": run_id, "agentId": "agent-1", "userId": user, "tier": "m5", "inputPayload": {"message": "Hello"}}
    return orjson.dumps({"id": f"event-{run_id}", "data": data})


@pytest.fixture
def setup(tmp_path: Path, recordings: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    write_recording(recordings, anthropic_default("claude-sonnet-4-6", input_tokens=1000, output_tokens=344))
    catalog = tmp_path / "catalog.toml"
    text = DEFAULT_CATALOG.read_text(encoding="utf-8")
    catalog.write_text(text.replace("monthly_quota = 2_000_000", f"monthly_quota = {QUOTA}"), encoding="utf-8")
    jobs = tmp_path / "jobs.jsonl"
    lines = [job("r1"), job("r2"), job("r3"), job("r4"), job("other-user", user="user-2"), job("bad", user="user 3")]
    jobs.write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.setenv("WORKER_QUOTAS", "on")
    return catalog, jobs


def test_runs_are_refused_once_the_quota_has_no_room(
    setup: tuple[Path, Path], recordings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog, jobs = setup
    replayed = replay_cli(capsys, jobs, "--catalog", catalog, "--recordings", recordings, "--concurrency", "1")
    assert replayed.code == 0
    outcomes = [
        (r["runId"], r["status"], (r["error"] or {}).get("code"), r["billing"]["billedTokens"])
        for r in replayed.results
    ]
    assert outcomes == [
        ("r1", "completed", None, BILL),
        ("r2", "completed", None, BILL),
        ("r3", "completed", None, BILL),  # 2 bills + its hold is exactly the quota: allowed
        ("r4", "rejected", "quota_exceeded", 0),
        ("other-user", "completed", None, BILL),  # another user's month is another key
        ("bad", "rejected", "invalid_job", 0),  # with quotas on, a userId is a key token
    ]
    refused = replayed.results[3]["error"]
    assert refused["retryable"] is False
    assert f"{QUOTA:,} billed tokens" in refused["message"]
    assert "in-memory usage store" in replayed.stderr


def test_off_nothing_is_refused(
    setup: tuple[Path, Path], recordings: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, jobs = setup
    monkeypatch.setenv("WORKER_QUOTAS", "off")
    replayed = replay_cli(capsys, jobs, "--catalog", catalog, "--recordings", recordings, "--concurrency", "1")
    assert [r["status"] for r in replayed.results] == ["completed"] * 6
    assert "usage store" not in replayed.stderr
