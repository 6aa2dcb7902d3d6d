"""The README's configuration table is the settings object's, row for row."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.settings import Settings

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_lists_every_setting_with_its_default() -> None:
    text = README.read_text()
    for name, default, _ in Settings.describe():
        shown = f"`{default}`" if default else "—"
        assert f"| `{name}` | {shown} |" in text, f"README.md lacks the row of {name} (default {shown})"


def test_readme_names_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text
    assert "make test" in text
