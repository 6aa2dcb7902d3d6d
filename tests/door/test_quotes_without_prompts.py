"""A refusal's message quotes a job value, never 20 characters of the job's prompt texts (docs/contract.md §11).

Found by `make fuzz`: a replyTo (or runId, model, tier) that repeats a stretch of the user message was quoted
in the result's error message, putting prompt text outside `outputPayload`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from catalog import default_catalog
from worker.door import DeadLetter, Door, Rejected
from worker.pipeline import Pipeline
from worker.result import RunResult

pytestmark = pytest.mark.unit

TOKEN = "17130999b89841e6bcf0b5ff41ee80fd"
MESSAGE = f"MESSAGE {TOKEN}  end of the user message"


def _windows(text: str) -> set[str]:
    return {text[i : i + 20] for i in range(len(text) - 19)}


def _body(**changes: Any) -> bytes:
    data: dict[str, Any] = {
        "runId": "run-1",
        "agentId": "agent",
        "userId": "user",
        "tier": "enterprise",
        "inputPayload": {"message": MESSAGE, "n": 0},
    }
    data.update(changes)
    envelope: dict[str, Any] = {"id": "job-1", "data": data}
    if "replyTo" in changes:
        envelope["replyTo"] = data.pop("replyTo")
    return orjson.dumps(envelope)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"replyTo": f" INBOX.fuzz.{TOKEN}"}, id="replyTo"),
        pytest.param({"agentId": 7, "replyTo": f"_INBOX.{TOKEN}.*"}, id="replyTo-wildcard"),
        pytest.param({"systemPrompt": f"system {TOKEN}", "timeoutSecs": f"{TOKEN}"}, id="system-prompt"),
    ],
)
def test_an_invalid_jobs_message_quotes_no_prompt_text(changes: dict[str, Any]) -> None:
    verdict = Door().open(_body(**changes))

    assert isinstance(verdict, Rejected)
    assert verdict.code == "invalid_job"
    assert not _windows(MESSAGE) & _windows(verdict.message), verdict.message


def test_a_bad_run_ids_dead_letter_detail_quotes_no_prompt_text() -> None:
    verdict = Door().open(_body(runId=f"bad id {TOKEN}"))

    assert isinstance(verdict, DeadLetter)
    assert not _windows(MESSAGE) & _windows(verdict.detail), verdict.detail


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        pytest.param({"model": f"gpt-{TOKEN}"}, "unknown_model", id="model"),
        pytest.param({"tier": f"gold-{TOKEN}"}, "unknown_tier", id="tier"),
    ],
)
def test_a_gate_refusal_quotes_no_prompt_text(changes: dict[str, Any], code: str) -> None:
    job = Door().open(_body(**changes))
    assert not isinstance(job, DeadLetter)
    pipeline = Pipeline(catalog=default_catalog(), providers={}, worker_id="w")

    result = asyncio.run(pipeline.run(job))

    assert isinstance(result, RunResult)
    assert result.error is not None
    assert result.error.code == code
    assert not _windows(MESSAGE) & _windows(result.error.message), result.error.message
