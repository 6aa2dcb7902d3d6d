"""The TypedDicts of examples/python/agent_jobs.py against `agent-worker schema`: a field added there shows here."""

from __future__ import annotations

from typing import Any, get_args, get_type_hints

import pytest
from agent_jobs import Billing, Job, Result, ResultError, Usage

from worker.commands.schema import schemas

pytestmark = pytest.mark.unit

_RESULT = schemas()["result"]
_JOB = schemas()["job"]


@pytest.mark.parametrize(
    ("typed", "definition"),
    [
        (Result, _RESULT),
        (Usage, _RESULT["$defs"]["ResultUsage"]),
        (Billing, _RESULT["$defs"]["ResultBilling"]),
        (ResultError, _RESULT["$defs"]["ResultError"]),
        (Job, _JOB["$defs"]["JobData"]),
    ],
    ids=["Result", "Usage", "Billing", "ResultError", "Job"],
)
def test_fields_and_required_fields_match_the_schema(typed: Any, definition: dict[str, Any]) -> None:
    assert set(typed.__annotations__) == set(definition["properties"])
    assert set(typed.__required_keys__) == set(definition.get("required", []))


def test_the_statuses_match_the_schema() -> None:
    assert set(get_args(get_type_hints(Result)["status"])) == set(_RESULT["properties"]["status"]["enum"])
