"""`agent-worker --help` and every command's `--help` speak to the people who run the worker."""

from __future__ import annotations

import pytest

from worker.cli import COMMANDS, main

pytestmark = pytest.mark.unit


def _help(*argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_the_top_level_help_says_what_the_worker_does_and_where_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(capsys=capsys)
    description = out.split("\n\n")[1]
    assert description.startswith("Run AI-agent jobs from NATS JetStream")
    assert "agent-worker demo" in out
    assert "docs/contract.md" in out
    # Nothing addressed to the project's developers (module paths, code names).
    assert "worker.commands" not in out
    assert "`" not in description


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_describes_itself(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(command, capsys=capsys)
    assert out.startswith(f"usage: agent-worker {command}")
    assert COMMANDS[command][1] in out
    assert "worker." not in out
