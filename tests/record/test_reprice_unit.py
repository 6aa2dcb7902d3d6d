"""The repricing arithmetic on its own: every status, a fractional multiplier, reading positions, the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.results import result_body
from catalog import default_catalog, load_catalog
from tests.record.catalogs import DEFAULT_TOML, OPUS, changed_catalog
from worker.commands._nats import parse_duration, stream_position
from worker.reprice import Repricer

pytestmark = pytest.mark.unit

RESULTS = [result_body("unit", index) for index in range(64)]


def stored(body: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(body)
    return parsed


def test_failed_and_timed_out_runs_are_priced_on_their_recorded_usage(tmp_path: Path) -> None:
    repricer = Repricer(load_catalog(changed_catalog(tmp_path / "opus.toml", OPUS, multiplier="15.25")))
    for body in RESULTS:
        repricer.add(body)

    opus = [stored(b) for b in RESULTS if stored(b)["model"] == OPUS]
    assert {r["status"] for r in opus} == {"completed", "timed_out"}
    # ceil(n × 15.25) = ceil(61n / 4), input and output each on their own.
    expected = sum(
        -(-61 * (r["usage"]["inputTokens"] + r["usage"]["cacheReadInputTokens"]) // 4)
        + -(-61 * r["usage"]["outputTokens"] // 4)
        - r["billing"]["billedTokens"]
        for r in opus
    )
    assert repricer.total().difference == expected > 0
    assert repricer.groups[("enterprise", OPUS)].multipliers_after == {"15.25"}
    failed = [stored(b) for b in RESULTS if stored(b)["status"] == "failed"]
    assert failed
    assert all(r["billing"]["billedTokens"] > 0 for r in failed)
    assert repricer.groups[("teams", "claude-sonnet-4-6")].difference == 0


def test_unchanged_catalog_reprices_to_the_stored_bills_and_not_results_are_skipped() -> None:
    repricer = Repricer(default_catalog())
    for body in [*RESULTS, b"not json", b"[]", b'{"runId": "x"}']:
        repricer.add(body)
    assert repricer.unreadable == 3
    assert repricer.runs == len(RESULTS)
    assert repricer.total().before == sum(stored(b)["billing"]["billedTokens"] for b in RESULTS) > 0
    assert repricer.total().difference == 0
    text = repricer.report()
    assert "3 messages on the results subjects were not results" in text
    assert "\ntotal " in text


def test_a_changed_default_model_is_rerouted_and_not_priced(tmp_path: Path) -> None:
    text = DEFAULT_TOML.replace('default_model = "claude-sonnet-4-6"', 'default_model = "claude-opus-4-6"', 1)
    path = tmp_path / "m5-opus.toml"
    path.write_text(text.replace('min_tier = "m10"', 'min_tier = "m5"', 1))
    repricer = Repricer(load_catalog(path), by="model")
    for body in RESULTS:
        repricer.add(body)
    sonnet = repricer.groups[("claude-sonnet-4-6",)]
    asked_default = [stored(b) for b in RESULTS if stored(b)["tier"] == "m5" and stored(b)["requestedModel"] is None]
    assert sonnet.rerouted == len(asked_default) > 0
    assert repricer.to_json()["groups"][0].keys() >= {"model", "runs", "billedBefore", "billedAfter", "rerouted"}


def test_reading_positions_from_both_reply_subject_forms() -> None:
    assert stream_position("$JS.ACK.MASCHINA_RESULTS.cons.1.42.40.1733400000000000000.7") == (
        42,
        1733400000000000000,
        7,
    )
    v2 = "$JS.ACK.hub.ACCHASH.MASCHINA_RESULTS.cons.1.42.40.1733400000000000000.0.rAnD0m"
    assert stream_position(v2) == (42, 1733400000000000000, 0)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("24h", 86400), ("7d", 604800), ("1.5h", 5400)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_a_refused_model_too_long_to_echo_is_not_taken_for_the_default() -> None:
    refused = stored(RESULTS[6])  # m1 asking for Opus: model_not_allowed
    unechoed = {**refused, "requestedModel": None, "error": {**refused["error"], "code": "unknown_model"}}
    repricer = Repricer(default_catalog())
    repricer.add(orjson.dumps(unechoed))
    assert repricer.total().newly_allowed == 0
