"""`agent-worker catalog`, run through the real CLI entry point."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.catalog.ops_file import OPS_CATALOG, edit
from worker.cli import main

pytestmark = pytest.mark.unit

# Written "2.50" so that the table is seen to print the multiplier normalised.
OPS_FILE = edit(OPS_CATALOG, 'multiplier = "2.5"', 'multiplier = "2.50"')


def test_prints_tiers_models_and_the_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "Catalog catalog/default.toml (built in): 7 tiers, 9 models"
    for expected in [
        "  access         0  ollama/llama3.2                        0",
        "  m10            3  claude-opus-4-6               10,000,000",
        "  internal       5  claude-opus-4-6                unlimited",
        "  claude-opus-4-6            Claude Opus        anthropic  m10               15       16384",
        "  ollama/mistral             Mistral (local)    ollama     access             0       16384",
        "  model \\ tier               access  m1    m5    m10   teams  enterprise  internal",
        "  claude-haiku-4-5-20251001  -       yes*  yes   yes   yes    yes         yes",
        "  claude-sonnet-4-6          -       -     yes*  yes   yes*   yes         yes",
        "  claude-opus-4-6            -       -     -     yes*  yes    yes*        yes*",
        "  ollama/llama3.2            yes*    yes   yes   yes   yes    yes         yes",
        "  gpt-5                      GPT-5              openai     m5                 8       16384",
        "  gpt-5-mini                 -       yes   yes   yes   yes    yes         yes",
        "  o3                         -       -     -     yes   yes    yes         yes",
    ]:
        assert expected in lines
    tier_rows = [line.split()[0] for line in lines if re.match(r"  \S+ +\d+  \S+ +(unlimited|[\d,]+)$", line)]
    assert tier_rows == ["access", "m1", "m5", "m10", "teams", "enterprise", "internal"]


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["tiers"][2] == {
        "name": "m5",
        "rank": 2,
        "defaultModel": "claude-sonnet-4-6",
        "monthlyQuota": 2_000_000,
    }
    assert [tier["monthlyQuota"] for tier in document["tiers"]] == [
        0,
        500_000,
        2_000_000,
        10_000_000,
        50_000_000,
        None,
        None,
    ]
    assert document["models"][2] == {
        "id": "claude-opus-4-6",
        "displayName": "Claude Opus",
        "provider": "anthropic",
        "minTier": "m10",
        "multiplier": "15",
        "outputCap": 16384,
    }
    ollama = ["ollama/llama3.2", "ollama/llama3.1", "ollama/mistral"]
    assert document["allowed"]["access"] == ollama
    assert document["allowed"]["m1"] == ["claude-haiku-4-5-20251001", *ollama, "gpt-5-mini"]
    assert document["allowed"]["m5"] == [
        "claude-haiku-4-5-20251001",
        "claude-sonnet-4-6",
        *ollama,
        "gpt-5-mini",
        "gpt-5",
    ]
    every = ["claude-haiku-4-5-20251001", "claude-sonnet-4-6", "claude-opus-4-6", *ollama, "gpt-5-mini", "gpt-5", "o3"]
    assert [document["allowed"][tier] for tier in ("m10", "teams", "enterprise", "internal")] == [every] * 4


def test_file_checks_and_prints_an_ops_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ops.toml"
    path.write_text(OPS_FILE, encoding="utf-8")
    assert main(["catalog", "--file", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[0] == f"Catalog {path}: 2 tiers, 2 models"
    assert "  claude-pro    Claude Pro     anthropic  pro              2.5        8192" in out.splitlines()
    assert "  claude-pro    -     yes*" in out.splitlines()


def test_a_bad_file_exits_2_naming_every_fault(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(edit(edit(OPS_FILE, 'provider = "anthropic"', 'provider = "azure"'), "rank = 1", "rank = -1"))
    assert main(["catalog", "--file", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}, line 6: tier 'pro': rank is -1; it must be 0 or more",
        f"{path}, line 19: model 'claude-pro': unknown provider 'azure' (known: anthropic, ollama, openai)",
    ]


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "--file", str(tmp_path / "absent.toml")]) == 2
    assert "cannot read the catalog file" in capsys.readouterr().err
