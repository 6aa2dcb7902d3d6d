"""The example clients' types against `agent-worker schema`: a field added there shows here.

The Python TypedDicts are compared field by field; the generated TypeScript files by the schema's digest they
record (the TypeScript suite compares them whole, but needs node).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, get_args, get_type_hints

import orjson
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


@pytest.mark.parametrize("which", ["job", "result"])
def test_the_generated_typescript_types_are_of_this_schema(which: str) -> None:
    generated = Path(__file__).resolve().parents[2] / "examples" / "typescript" / "src" / "generated" / f"{which}.ts"
    recorded = re.search(r"^// Schema sha256: ([0-9a-f]{64})$", generated.read_text(), re.M)
    assert recorded is not None, f"{generated} records no schema digest"
    # What `agent-worker schema --which` prints, without the final newline.
    printed = orjson.dumps(schemas()[which], option=orjson.OPT_INDENT_2)
    assert recorded.group(1) == hashlib.sha256(printed).hexdigest(), (
        f"{generated.name} is stale: run `make examples-types`"
    )
