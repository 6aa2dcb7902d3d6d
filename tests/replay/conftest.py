"""Fixtures for the replay tests: an empty recordings directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    """An empty recordings directory; add files with `write_recording(recordings, …)`."""
    directory = tmp_path / "recordings"
    directory.mkdir()
    return directory
