"""Helpers for the replay tests: run the CLI in-process, read its two streams, and write recordings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from worker.cli import main
from worker.providers.exchange import Recording

__all__ = ["VOLATILE", "Replayed", "anthropic_default", "normalised", "replay_cli"]

#: Result fields that differ from run to run (or between replay and the worker) and are left out of comparisons.
VOLATILE = ("startedAt", "finishedAt", "durationMs", "workerId")


def normalised(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key not in VOLATILE}


@dataclass(frozen=True, slots=True)
class Replayed:
    code: int
    results: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    stdout: str
    stderr: str


def replay_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> Replayed:
    """`agent-worker replay ARGV…` in this process; stdout parsed as result lines unless it is a table."""
    code = main(["replay", *map(str, argv)])
    out, err = capsys.readouterr()
    tabular = "--summary" in argv or "--compare" in argv
    results = [] if tabular else [orjson.loads(line) for line in out.splitlines()]
    dead = [orjson.loads(line)["deadLetter"] for line in err.splitlines() if line.startswith('{"deadLetter"')]
    return Replayed(code, results, dead, out, err)


def anthropic_default(model: str, *, input_tokens: int, output_tokens: int, cache_read: int = 0) -> Recording:
    """A default recording for `model`: a Messages API answer with this usage."""
    return Recording(
        provider="anthropic",
        model=model,
        response={
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": f"answer from {model}"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_read_input_tokens": cache_read,
            },
        },
    )
