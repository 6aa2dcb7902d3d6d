"""`python -m bench --quick` runs every benchmark end to end and prints every row.

Benchmarks are not timed tests: this judges that each row was measured (met or missed), not the figures.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.suite import BENCHMARKS

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_every_row_with_a_figure_and_a_mark(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--doc", str(doc)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=340,  # T7 (the quota hot key, two 3-replica runs) adds about 20 s
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr[-4000:]
    for benchmark in BENCHMARKS:
        for spec in benchmark.specs:
            row = re.search(rf"^{re.escape(spec.key)}\s+.*\s(met|MISSED)\s", completed.stdout, re.MULTILINE)
            assert row is not None, f"no measured row {spec.key!r} in:\n{completed.stdout}"
    # Quick figures are noise: only a full run may replace the recorded ones.
    assert not doc.exists()
