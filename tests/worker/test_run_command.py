"""`agent-worker run`: its help lists every setting; bad configuration exits 2 before connecting anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.cli import main
from worker.settings import Settings

pytestmark = pytest.mark.unit


def test_help_lists_every_setting_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name, default, _ in Settings.describe():
        [line] = [line for line in out.splitlines() if line.strip().startswith(name + " ")]
        assert f"default: {default or '(unset)'}" in line
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in out


def test_an_otlp_export_it_cannot_make_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert main(["run"]) == 2
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("WORKER_CONCURRENCY", "lots", "WORKER_CONCURRENCY"),
        ("WORKER_REPLY_PREFIXES", "maschina.", "WORKER_REPLY_PREFIXES"),
        ("WORKER_ACK_WAIT_SECS", "0", "WORKER_ACK_WAIT_SECS"),
    ],
)
def test_bad_setting_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["run"]) == 2
    assert named in capsys.readouterr().err


def test_bad_catalog_exits_2_naming_the_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text("[tiers\n")
    monkeypatch.setenv("WORKER_CATALOG", str(catalog))
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert str(catalog) in err
    assert "line 1" in err
