"""Scenario 7, in-process half: hypothesis-generated bodies through the single door (`worker.door.Door`).

Properties: the door never raises; it always returns one of its three verdicts; a dead letter carries
one of the door's reasons and a sentence; a body that is a JSON object naming a safe run id is never
dead-lettered (it gets a result, `rejected` at worst); and a bad signature wins over everything.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.harness import SOAK, SOAK_FACTOR
from tests.reliability.poison import SIGNING_KEY, sign
from tests.reliability.traffic import envelope
from worker.contract import DlqReason
from worker.door import DeadLetter, Door, Rejected
from worker.job import Job

pytestmark = pytest.mark.system

EXAMPLES = 300 * (SOAK_FACTOR if SOAK else 1)
_SAFE_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_DOOR_REASONS = {DlqReason.NOT_JSON, DlqReason.NOT_OBJECT, DlqReason.NO_RUN_ID, DlqReason.BAD_RUN_ID}

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
run_ids = st.one_of(
    st.from_regex(_SAFE_RUN_ID, fullmatch=True),
    st.text(max_size=140),
    json_values,
)
job_fields = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["agent.execute", "agent.other"]) | json_values,
        "agentId": st.text(max_size=20) | json_values,
        "userId": st.text(max_size=20) | json_values,
        "tier": st.sampled_from(["access", "m1", "m5", "m10", "teams", "enterprise", "internal", "M5"]) | json_values,
        "model": st.sampled_from(["claude-sonnet-4-6", "ollama/llama3.2", "", "gpt-4o"]) | json_values,
        "systemPrompt": st.text(max_size=50) | json_values,
        "inputPayload": st.dictionaries(st.text(max_size=10), json_values, max_size=4) | json_values,
        "timeoutSecs": st.integers(-5, 4000) | json_values,
        "maxTokens": st.integers(-5, 10**7) | json_values,
        "replyTo": st.sampled_from(["_INBOX.a.b", "_INBOX.", "$JS.API.X", "maschina.x", ""]) | json_values,
    },
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Raw bytes, any JSON value, or an envelope / bare job whose fields are drawn from good and bad values."""
    kind = draw(st.sampled_from(["bytes", "json", "envelope", "bare", "mutated"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return _dumps(draw(json_values))
    job: dict[str, Any] = draw(job_fields)
    job["runId"] = draw(run_ids)
    if kind == "bare":
        return _dumps(job)
    body = envelope("placeholder")
    body["data"].update(job)
    if kind == "mutated":
        raw = bytearray(_dumps(body))
        at = draw(st.integers(0, len(raw) - 1))
        raw[at] = draw(st.integers(0, 255))
        return bytes(raw)
    return _dumps(body)


def _dumps(value: Any) -> bytes:
    """The standard library writes what orjson refuses to (integers past 64 bits, lone surrogates as escapes)."""
    return json.dumps(value).encode()


def _names_a_safe_run_id(body: bytes) -> bool:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(parsed, dict):
        return False
    job = parsed["data"] if isinstance(parsed.get("data"), dict) else parsed
    run_id = job.get("runId")
    return isinstance(run_id, str) and _SAFE_RUN_ID.fullmatch(run_id) is not None


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_door_reads_any_body_without_raising(body: bytes) -> None:
    verdict = Door().open(body, {})
    assert isinstance(verdict, Job | Rejected | DeadLetter)
    if isinstance(verdict, DeadLetter):
        assert verdict.reason in _DOOR_REASONS
        assert verdict.detail
        assert not _names_a_safe_run_id(body), f"a job naming a safe run id was dead-lettered: {verdict}"
    else:
        assert _names_a_safe_run_id(body)
        assert _SAFE_RUN_ID.fullmatch(verdict.ref.run_id)
    if isinstance(verdict, Rejected):
        assert verdict.code.value in ("invalid_job", "input_too_large")
        assert verdict.message


@settings(max_examples=EXAMPLES // 5, deadline=None)
@given(bodies(), st.sampled_from(["missing", "forged", "valid", "upper"]))
def test_signature_is_checked_before_anything_else(body: bytes, signature: str) -> None:
    headers = {
        "missing": {},
        "forged": {"Maschina-Signature": sign(body + b"x")},
        "valid": {"Maschina-Signature": sign(body)},
        "upper": {"Maschina-Signature": "sha256=" + sign(body).removeprefix("sha256=").upper()},
    }[signature]
    verdict = Door(signing_key=SIGNING_KEY).open(body, headers)
    unsigned = Door().open(body, {})
    if signature in ("missing", "forged"):
        assert isinstance(verdict, DeadLetter)
        assert verdict.reason is DlqReason.BAD_SIGNATURE
    else:
        assert verdict == unsigned
