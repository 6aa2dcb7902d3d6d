"""docs/contract.md, the published wire contract, says what the code does: tiers, catalog, codes, reasons, streams.

The page is read as an integrator reads it (its tables and sentences); the code's side is the default catalog
(catalog/default.toml), the result's status type and the ErrorCode / DlqReason enums. References to it from the
rest of the repository (`docs/contract.md §N`) must name sections it has.
"""

from __future__ import annotations

import json
import re
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import get_args

import pytest

from catalog import bill, default_catalog, multiplier_text
from worker.contract import DlqReason, ErrorCode, usage_from_wire
from worker.jetstream import topology
from worker.jetstream.topology import stream_configs
from worker.result import Status
from worker.settings import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "contract.md").read_text()
CATALOG = default_catalog()
# Where the contract lived before it was published here (spelt in two parts so this file does not match itself).
OUTSIDE = "../" + "shared"


def _section(heading: str) -> str:
    """The text under the heading that starts with `heading`, up to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}.*$", DOC, re.M)
    assert match is not None, f"docs/contract.md has no heading {heading!r}"
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.M).search(DOC, match.end())
    return DOC[match.end() : end.start() if end else len(DOC)]


def _table(text: str) -> list[list[str]]:
    """The rows of the first Markdown table in `text`, cells stripped of spaces and backticks, header excluded."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows[2:]]


def _sentence(text: str, start: str) -> str:
    """The paragraph or list item of `text` that begins with `start`, on one line."""
    match = re.search(rf"^{re.escape(start)}.*?(?=\n\n|\n- )", text, re.M | re.S)
    assert match is not None, f"no paragraph starting {start!r}"
    return " ".join(match.group(0).split())


def test_tiers_and_their_ranks() -> None:
    line = _sentence(_section("3. Tiers"), "Tiers, lowest first (rank):")
    documented = {name: int(rank) for name, rank in re.findall(r"`(\w+)` (\d+)", line)}
    assert documented == {tier.name: tier.rank for tier in CATALOG.tiers.values()}


def test_the_catalog_table_is_the_default_catalog() -> None:
    documented = {row[0]: tuple(row[1:]) for row in _table(_section("3. Tiers"))}
    actual = {
        model.id: (model.display_name, model.provider, model.min_tier, multiplier_text(model.multiplier))
        for model in CATALOG.models.values()
    }
    assert documented == actual


def test_default_model_per_tier() -> None:
    line = _sentence(_section("3. Tiers"), "Default model per tier:")
    documented = dict(re.findall(r"(\w+) `([^`]+)`", line))
    assert documented == {tier.name: tier.default_model for tier in CATALOG.tiers.values()}


def test_monthly_quota_per_tier() -> None:
    line = _sentence(_section("3. Tiers"), "Monthly quota of billed tokens per tier")
    listing = line.split(":", 1)[1].rstrip(".")
    documented: dict[str, int | None] = {}
    for part in re.split(r", (?=[a-z])", listing):
        names, amount = part.rsplit(" ", 1)
        for name in names.split(" and "):
            documented[name.strip()] = None if amount == "unlimited" else int(amount.replace(",", ""))
    assert documented == {tier.name: tier.monthly_quota for tier in CATALOG.tiers.values()}


def test_statuses() -> None:
    documented = [row[0] for row in _table(_section("Statuses"))]
    assert documented == list(get_args(Status))
    listed = re.findall(r"`(\w+)`", _sentence(_section("6. The result message"), "- `status`:"))[1:]
    assert listed == list(get_args(Status))


def test_error_codes() -> None:
    table = _table(_section("Error codes"))
    assert [row[0] for row in table] == [code.value for code in ErrorCode]
    assert {row[1] for row in table} <= set(get_args(Status))
    # §6: rejected and timeout are never retryable.
    assert all(row[2] == "no" for row in table if row[1] == "rejected" or row[0] == "timeout")
    listed = re.findall(r"`(\w+)`", _sentence(_section("6. The result message"), "- Error codes:"))
    assert listed == [code.value for code in ErrorCode]


def test_dead_letter_reasons() -> None:
    assert [row[0] for row in _table(_section("Dead-letter reasons"))] == [reason.value for reason in DlqReason]
    rules = _sentence(_section("7. Delivery rules"), "- Dead letters go to")
    listed = re.findall(r"`(\w+)`", rules.split("(one of", 1)[1].split(";", 1)[0])
    assert listed == [reason.value for reason in DlqReason]


def test_the_example_result_bills_as_billing_does() -> None:
    example = json.loads(_section("6. The result message").split("```json", 1)[1].split("```", 1)[0])
    charged = bill(usage_from_wire(example["usage"]), Decimal(example["billing"]["multiplier"]))
    assert example["billing"] == {
        "multiplier": example["billing"]["multiplier"],
        "billedInputTokens": charged.input_tokens,
        "billedOutputTokens": charged.output_tokens,
        "billedTokens": charged.total,
    }


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = [ROOT / name for name in listed.splitlines()]
    return [path for path in files if path.suffix in {".py", ".md", ".ts", ".toml", ".yaml", ".yml", ".json"}]


def test_every_reference_names_a_section_it_has() -> None:
    sections = {int(number) for number in re.findall(r"^### (\d+)\. ", DOC, re.M)}
    assert sections == set(range(1, 12))
    outside: list[str] = []
    for path in _tracked_text_files():
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        if OUTSIDE in text:
            outside.append(str(path.relative_to(ROOT)))
        for reference in re.findall(r"docs/contract\.md((?:[ ,–-]+(?:and )?§\d+)+)", text):
            for number in re.findall(r"§(\d+)", reference):
                assert int(number) in sections, f"{path.relative_to(ROOT)} cites docs/contract.md §{number}"
    assert outside == [], f"a file refers outside the repository ({OUTSIDE})"


def test_the_stream_settings_an_api_relies_on_are_the_ones_the_worker_makes_and_warns_about() -> None:
    rows = [[cell.replace("`", "") for cell in row] for row in _table(_section("Stream settings an API relies on"))]
    configs = {config.name: config for config in stream_configs(Settings.from_env({}))}
    jobs, results = configs["MASCHINA_JOBS"], configs["MASCHINA_RESULTS"]
    assert jobs.duplicate_window is not None
    assert results.duplicate_window is not None
    assert [row[:2] for row in rows] == [
        ["MASCHINA_JOBS", f"duplicate_window {jobs.duplicate_window / 60:g} min"],
        ["MASCHINA_RESULTS", "allow_direct" if results.allow_direct else "(not made)"],
        ["MASCHINA_RESULTS", f"duplicate_window ≥ {results.duplicate_window / 3600:g} h"],
    ]
    warned = Path(topology.__file__).read_text()
    for row in rows:
        assert f'"{row[-1]}"' in warned, f"the worker logs no warning named {row[-1]}"
