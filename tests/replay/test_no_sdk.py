"""Replay and demo never import the anthropic SDK: it costs over a second of CPU and recordings do not need it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.nats

# An Anthropic model's job, so the recorded Messages answer is read as the live provider reads it.
JOB = Path(__file__).resolve().parent.parent / "fixtures" / "jobs" / "01-m5-sonnet.json"

PROGRAM = textwrap.dedent(
    """
    import sys

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "anthropic":
                raise ImportError(f"{name} is blocked")
            return None

    sys.meta_path.insert(0, Refuse())
    import worker.commands.demo
    from worker.cli import main

    code = main(["replay", sys.argv[1]])
    print(code)
    """
)


def test_replay_and_demo_run_without_the_anthropic_sdk() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(JOB)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    *results, code = done.stdout.splitlines()
    assert code == "0", done.stderr
    [result] = [orjson.loads(line) for line in results]
    assert (result["status"], result["provider"]) == ("completed", "anthropic")
    assert result["usage"]["inputTokens"] > 0
