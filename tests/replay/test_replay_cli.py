"""`agent-worker replay`: inputs, the two output streams, --catalog, --summary, --compare and the no-recording error."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from catalog import default_catalog, load_catalog
from tests.replay.support import anthropic_default, replay_cli
from worker.commands.replay import Replay
from worker.door import Door
from worker.payloads import Payload
from worker.progress import Progress
from worker.providers.base import ProviderReply, ProviderRequest
from worker.providers.exchange import write_recording
from worker.providers.recorded import RecordedProvider, RecordingStore
from worker.result import RunResult

pytestmark = pytest.mark.unit

DEFAULT_CATALOG = Path(__file__).parents[2] / "catalog" / "default.toml"


def job(run_id: str, tier: str, model: str | None = None, message: str = "Hello") -> dict[str, Any]:
    data: dict[str, Any] = {"runId": run_id, "agentId": "agent-1", "userId": "user-1", "tier": tier}
    if model is not None:
        data["model"] = model
    data["inputPayload"] = {"message": message}
    return {"id": f"event-{run_id}", "data": data}


@pytest.fixture
def priced(recordings: Path) -> Path:
    """Recordings with hand-picked usage: Sonnet 1,000 + 11 cache-read in / 333 out; Haiku 7 in / 5 out."""
    write_recording(
        recordings, anthropic_default("claude-sonnet-4-6", input_tokens=1000, output_tokens=333, cache_read=11)
    )
    write_recording(recordings, anthropic_default("claude-haiku-4-5-20251001", input_tokens=7, output_tokens=5))
    return recordings


#: Two Sonnet jobs on m5, a Haiku job on m1, and an m1 job denied Opus.
JOBS = [job("s1", "m5"), job("s2", "m5", "claude-sonnet-4-6"), job("h1", "m1"), job("denied", "m1", "claude-opus-4-6")]


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(body) for body in JOBS) + b"\n")
    return path


def test_jsonl_gives_one_result_per_line_in_order_and_dead_letters_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        orjson.dumps(job("a", "m5"))
        + b"\n\n{not json\n"
        + orjson.dumps(job("b", "access"))
        + b"\n[1, 2]\n"
        + orjson.dumps({"data": {"tier": "m1"}})
        + b"\n"
    )

    replayed = replay_cli(capsys, path)

    assert replayed.code == 0
    assert [r["runId"] for r in replayed.results] == ["a", "b"]
    assert [r["status"] for r in replayed.results] == ["completed", "completed"]
    assert [(d["source"], d["reason"]) for d in replayed.dead_letters] == [
        (f"{path}:3", "not_json"),
        (f"{path}:5", "not_object"),
        (f"{path}:6", "no_run_id"),
    ]
    assert all(d["detail"] for d in replayed.dead_letters)


def test_a_json_array_and_a_single_object_are_read_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    array = tmp_path / "many.json"
    array.write_bytes(orjson.dumps([job("x1", "m1"), job("x2", "m10"), "not an object"], option=orjson.OPT_INDENT_2))
    single = tmp_path / "one.json"
    single.write_bytes(orjson.dumps(job("x3", "teams"), option=orjson.OPT_INDENT_2))

    replayed = replay_cli(capsys, array, single)

    assert [(r["runId"], r["model"]) for r in replayed.results] == [
        ("x1", "claude-haiku-4-5-20251001"),
        ("x2", "claude-opus-4-6"),
        ("x3", "claude-sonnet-4-6"),
    ]
    assert [(d["source"], d["reason"]) for d in replayed.dead_letters] == [(f"{array}[2]", "not_object")]


def test_no_recording_fails_the_job_with_a_message_naming_model_and_key(
    jobs: Path, recordings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_recording(recordings, anthropic_default("claude-haiku-4-5-20251001", input_tokens=7, output_tokens=5))

    replayed = replay_cli(capsys, jobs, "--recordings", recordings)

    by_run = {r["runId"]: r for r in replayed.results}
    assert by_run["h1"]["status"] == "completed"
    failed = by_run["s1"]
    assert (failed["status"], failed["model"], failed["error"]["code"]) == (
        "failed",
        "claude-sonnet-4-6",
        "provider_error",
    )
    assert "No recording for anthropic model claude-sonnet-4-6 (request key " in failed["error"]["message"]
    assert failed["billing"]["billedTokens"] == 0


def test_summary_prints_billed_tokens_per_tier_and_model(
    jobs: Path, priced: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replayed = replay_cli(capsys, jobs, "--recordings", priced, "--summary")

    lines = replayed.stdout.splitlines()
    # Sonnet: raw in 1,011 x 3 = 3,033, out 333 x 3 = 999, per job 4,032; two jobs 8,064. Haiku 7 + 5 = 12.
    assert ["m5", "claude-sonnet-4-6", "2", "2,022", "666", "3", "8,064"] in [line.split() for line in lines]
    assert ["m1", "claude-haiku-4-5-20251001", "1", "7", "5", "1", "12"] in [line.split() for line in lines]
    assert ["m1", "-", "1", "0", "0", "-", "0"] in [line.split() for line in lines]
    assert lines[-1].split() == ["total", "4", "3", "2,029", "671", "8,076"]


def test_compare_prices_a_multiplier_change_per_tier_and_model(
    jobs: Path, priced: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DEFAULT_CATALOG.read_text()
    assert text.count('multiplier = "3"') == 1
    haiku = 'display_name = "Claude Haiku"\nprovider = "anthropic"\nmin_tier = "m1"\nmultiplier = "1"'
    assert text.count(haiku) == 1
    after = tmp_path / "after.toml"
    after.write_text(
        text.replace('multiplier = "3"', 'multiplier = "3.25"').replace(haiku, haiku.replace('"1"', '"0.5"'))
    )

    replayed = replay_cli(capsys, jobs, "--recordings", priced, "--compare", after)

    rows = [line.split() for line in replayed.stdout.splitlines()]
    # Sonnet after: ceil(1,011 x 3.25) = 3,286 and ceil(333 x 3.25) = 1,083, so 4,369 per job, 8,738 for two.
    assert ["m5", "claude-sonnet-4-6", "2", "3", "3.25", "8,064", "8,738", "+674", "+8.4%"] in rows
    # Haiku after: ceil(7 x 0.5) = 4 and ceil(5 x 0.5) = 3: 7.
    assert ["m1", "claude-haiku-4-5-20251001", "1", "1", "0.5", "12", "7", "-5", "-41.7%"] in rows
    assert ["m1", "12", "7", "-5", "-41.7%"] in rows
    assert ["m5", "8,064", "8,738", "+674", "+8.4%"] in rows
    assert ["total", "8,076", "8,745", "+669", "+8.3%"] in rows
    assert "Jobs whose status or model differ" not in replayed.stdout  # same routing under both catalogs


async def test_compare_calls_the_provider_once_per_job_for_both_catalogs(priced: Path) -> None:
    calls: list[ProviderRequest] = []

    class Counting(RecordedProvider):
        async def complete(self, request: ProviderRequest) -> ProviderReply:
            calls.append(request)
            return await super().complete(request)

    replay = Replay(
        door=Door(),
        catalogs=(default_catalog(), load_catalog(DEFAULT_CATALOG)),
        providers={"anthropic": Counting("anthropic", RecordingStore.load([priced]))},
        concurrency=2,
    )
    payloads = [Payload(orjson.dumps(body), "jobs") for body in JOBS]

    runs: list[tuple[RunResult, ...]] = []
    await replay.run_all(payloads, runs.append)

    assert len(calls) == 3  # s1, s2, h1; the denied job never reaches a provider
    assert [(before.billing, before.usage) for before, _ in runs] == [(after.billing, after.usage) for _, after in runs]


def _opus_opened_to_m1(tmp_path: Path, recordings: Path) -> Path:
    """A copy of the built-in catalog with Opus opened to m1, and Opus's default recording (2 in, 3 out)."""
    opened = tmp_path / "open.toml"
    opened.write_text(DEFAULT_CATALOG.read_text().replace('min_tier = "m10"', 'min_tier = "m1"'))
    write_recording(recordings, anthropic_default("claude-opus-4-6", input_tokens=2, output_tokens=3))
    return opened


def test_catalog_replays_under_another_catalog(
    jobs: Path, priced: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Opus opened to m1: the job denied under the built-in catalog now runs (on Opus's default recording).
    other = _opus_opened_to_m1(tmp_path, priced)

    replayed = replay_cli(capsys, jobs, "--recordings", priced, "--catalog", other)

    denied = replayed.results[-1]
    assert (denied["runId"], denied["status"], denied["model"]) == ("denied", "completed", "claude-opus-4-6")
    assert denied["billing"] == {
        "multiplier": "15",
        "billedInputTokens": 30,
        "billedOutputTokens": 45,
        "billedTokens": 75,
    }


def test_a_bad_catalog_or_missing_file_exits_2_naming_it(
    tmp_path: Path, jobs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[tiers.access]\nrank = 0\n")

    assert replay_cli(capsys, jobs, "--catalog", bad).code == 2
    assert replay_cli(capsys, tmp_path / "missing.jsonl").code == 2


def test_progress_draws_on_a_terminal_only() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress(3, stream)
        for _ in range(3):
            progress.advance()
        progress.clear()

    assert "3/3" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\x1b[K")
    assert pipe.getvalue() == ""


def test_dash_reads_jsonl_from_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lines = b"".join(orjson.dumps(body) + b"\n" for body in JOBS[:2])
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(lines)))

    replayed = replay_cli(capsys, "-")

    assert [r["runId"] for r in replayed.results] == ["s1", "s2"]


def test_compare_lists_the_jobs_whose_outcome_changes(
    jobs: Path, priced: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Opus opened to m1 at 15x: the job denied before now runs, on Opus's recording (2 in, 3 out: 30 + 45 billed).
    after = _opus_opened_to_m1(tmp_path, priced)

    replayed = replay_cli(capsys, jobs, "--recordings", priced, "--compare", after)

    rows = [line.split() for line in replayed.stdout.splitlines()]
    assert ["m1", "-", "1->0", "-", "-", "0", "0", "+0", "-"] in rows
    assert ["m1", "claude-opus-4-6", "0->1", "-", "15", "0", "75", "+75", "new"] in rows
    assert ["total", "8,076", "8,151", "+75", "+0.9%"] in rows
    assert replayed.stdout.rstrip().endswith("Jobs whose status or model differ (1): denied")
