"""`agent-worker schema`: the job and result schemas, camelCase, and true to the recorded payloads."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from testkit.jobs import encode, envelope, job_data
from tests.contract import JOB_FIELDS, RESULT_FIELDS
from tests.fixtures.jobs import recorded_jobs
from worker.cli import main
from worker.commands.schema import schemas

pytestmark = pytest.mark.unit

CONTRACT_RESULT = {
    "version": 1,
    "type": "agent.execute.result",
    "jobId": "0b5a3c8e-7f0e-4a4e-9d1b-2f0f6a1e9c11",
    "runId": "7c1e0d4a-3b7a-4c55-8a0e-5e2f1d9b6a70",
    "agentId": "a9f3b2c1-0d4e-4f5a-8b6c-7d8e9f0a1b2c",
    "userId": "u1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    "tier": "m5",
    "status": "completed",
    "requestedModel": "claude-sonnet-4-6",
    "model": "claude-sonnet-4-6",
    "provider": "anthropic",
    "outputPayload": {"text": "..."},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 812, "outputTokens": 240, "cacheCreationInputTokens": 0, "cacheReadInputTokens": 0},
    "billing": {"multiplier": "3", "billedInputTokens": 2436, "billedOutputTokens": 720, "billedTokens": 3156},
    "error": None,
    "attempt": 1,
    "workerId": "worker-7d9f-1234",
    "startedAt": "2026-03-08T12:00:00.120Z",
    "finishedAt": "2026-03-08T12:00:04.530Z",
    "durationMs": 4410,
}


def _printed(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main(["schema", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_schema_prints_job_and_result(capsys: pytest.CaptureFixture[str]) -> None:
    printed = _printed(capsys)
    assert printed == schemas()
    job = printed["job"]
    assert [ref["$ref"] for ref in job["anyOf"]] == ["#/$defs/Envelope", "#/$defs/BareJob"]
    assert set(job["$defs"]["JobData"]["properties"]) == JOB_FIELDS
    assert set(job["$defs"]["BareJob"]["properties"]) == JOB_FIELDS | {"replyTo"}
    assert set(job["$defs"]["Envelope"]["properties"]) == {"id", "timestamp", "version", "subject", "replyTo", "data"}
    assert set(printed["result"]["properties"]) == RESULT_FIELDS


@pytest.mark.parametrize("which", ["job", "result"])
def test_schema_which(capsys: pytest.CaptureFixture[str], which: str) -> None:
    assert _printed(capsys, "--which", which) == schemas()[which]


@pytest.mark.parametrize(
    "recorded", [r for r in recorded_jobs() if r.expected["verdict"] == "job"], ids=lambda recorded: recorded.name
)
def test_every_accepted_recorded_job_matches_the_job_schema(recorded: Any) -> None:
    jsonschema.validate(json.loads(recorded.body), schemas()["job"])


@pytest.mark.parametrize(
    "changes",
    [
        {"agentId": ""},
        {"timeoutSecs": 0},
        {"timeoutSecs": "300"},
        {"maxTokens": 0},
        {"inputPayload": []},
        {"type": "x"},
    ],
    ids=repr,
)
@pytest.mark.parametrize("enveloped", [True, False], ids=["envelope", "bare"])
def test_job_schema_refuses_invalid_jobs(changes: dict[str, Any], enveloped: bool) -> None:
    data = job_data(changes)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(encode(envelope(data) if enveloped else data)), schemas()["job"])


def test_contract_result_matches_the_result_schema() -> None:
    jsonschema.validate(CONTRACT_RESULT, schemas()["result"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**CONTRACT_RESULT, "status": "done"}, schemas()["result"])


def test_result_schema_requires_every_field_the_contract_always_writes() -> None:
    result = schemas()["result"]
    assert set(result["required"]) == RESULT_FIELDS
    for name in ("ResultUsage", "ResultBilling", "ResultError"):
        assert set(result["$defs"][name]["required"]) == set(result["$defs"][name]["properties"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({k: v for k, v in CONTRACT_RESULT.items() if k != "usage"}, result)
