"""Rule 4, validation: a readable job with a bad field is rejected (`invalid_job`), naming the field and fault."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import pytest

from testkit.jobs import JOB_ID, MISSING, REPLY_TO, RUN_ID, encode, envelope, job_data
from worker.contract import ErrorCode
from worker.door import Door, Rejected
from worker.job import Job, RunRef

pytestmark = pytest.mark.unit

BASE = job_data()
NOT_NON_EMPTY_STRINGS: tuple[Any, ...] = (MISSING, None, "", 7, 7.5, True, [], ["a"], {})

# (field, bad value): every kind of wrong value for each field of the job.
INVALID_FIELDS: list[tuple[str, Any]] = [
    ("type", None),
    ("type", ""),
    ("type", "agent.run"),
    ("type", "Agent.Execute"),
    ("type", 1),
    *[(field, value) for field in ("agentId", "userId") for value in NOT_NON_EMPTY_STRINGS],
    *[(field, "a" * 257) for field in ("agentId", "userId", "tier", "model")],  # 256 characters at most
    ("agentId", "é" * 257),  # characters are code points
    ("tier", MISSING),
    ("tier", None),
    ("tier", 5),
    ("tier", True),
    ("tier", ["m5"]),
    ("tier", {}),
    ("model", 5),
    ("model", False),
    ("model", ["claude-sonnet-4-6"]),
    ("model", {}),
    ("systemPrompt", 5),
    ("systemPrompt", True),
    ("systemPrompt", ["be brief"]),
    ("systemPrompt", {"text": "be brief"}),
    ("timeoutSecs", 0),
    ("timeoutSecs", -1),
    ("timeoutSecs", 3601),
    ("timeoutSecs", 300.0),
    ("timeoutSecs", 1.5),
    ("timeoutSecs", True),
    ("timeoutSecs", False),
    ("timeoutSecs", "300"),
    ("timeoutSecs", [300]),
    ("timeoutSecs", {}),
    ("timeoutSecs", 2**70),  # an integer, but beyond 3600
    ("maxTokens", 0),
    ("maxTokens", -4096),
    ("maxTokens", 4096.0),
    ("maxTokens", True),
    ("maxTokens", "4096"),
    ("maxTokens", [4096]),
    ("maxTokens", -(2**64)),
    ("maxTokens", 1e20),  # a float, though a whole one
    ("inputPayload", "Summarise the attached notes."),
    ("inputPayload", ""),
    ("inputPayload", []),
    ("inputPayload", [{"message": "hi"}]),
    ("inputPayload", 5),
    ("inputPayload", True),
]


def _echo(field: str, value: Any) -> RunRef:
    """The run reference a job with `field` set to `value` echoes (docs/contract.md §6: strings echoed, else null)."""

    def text(name: str) -> str | None:
        raw = value if field == name else BASE[name]
        return raw if isinstance(raw, str) and len(raw) <= 256 else None

    return RunRef(
        run_id=RUN_ID,
        job_id=JOB_ID,
        agent_id=text("agentId"),
        user_id=text("userId"),
        tier=text("tier"),
        requested_model=text("model") or None,
        reply_to=REPLY_TO,
    )


def _rejected(body: dict[str, Any], door: Door | None = None) -> Rejected:
    verdict = (door or Door()).open(encode(body))
    assert isinstance(verdict, Rejected), verdict
    return verdict


@pytest.mark.parametrize(("field", "value"), INVALID_FIELDS, ids=[f"{f}={v!r}"[:40] for f, v in INVALID_FIELDS])
def test_bad_field_is_invalid_job_naming_the_field(field: str, value: Any) -> None:
    verdict = _rejected(envelope(job_data({field: value})))
    assert verdict.code is ErrorCode.INVALID_JOB
    assert verdict.message.startswith(f"Invalid job: {field} ")
    assert ";" not in verdict.message  # one fault, one field
    assert verdict.ref == _echo(field, value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"agentId": MISSING},
            "Invalid job: agentId is missing (it must be a non-empty string of at most 256 characters).",
        ),
        ({"agentId": ""}, 'Invalid job: agentId must be a non-empty string of at most 256 characters, not "".'),
        (
            {"userId": "u" * 300},
            "Invalid job: userId must be a non-empty string of at most 256 characters, not a string of 300 characters.",
        ),
        ({"type": None}, 'Invalid job: type must be absent or "agent.execute", not null.'),
        ({"tier": ["m5"]}, "Invalid job: tier must be a string of at most 256 characters, not an array."),
        (
            {"model": "m" * 524_288},
            "Invalid job: model must be a string of at most 256 characters, or absent or null, "
            "not a string of 524,288 characters.",
        ),
        ({"model": 5}, "Invalid job: model must be a string of at most 256 characters, or absent or null, not 5."),
        (
            {"timeoutSecs": 300.0},
            "Invalid job: timeoutSecs must be a JSON integer from 1 to 3600, or absent or null, not 300.0.",
        ),
        (
            {"timeoutSecs": True},
            "Invalid job: timeoutSecs must be a JSON integer from 1 to 3600, or absent or null, not true.",
        ),
        (
            {"maxTokens": "4096"},
            'Invalid job: maxTokens must be a JSON integer of at least 1, or absent or null, not "4096".',
        ),
        # Prompt text is never quoted back, so results and logs cannot leak it.
        (
            {"inputPayload": "Summarise my salary slip"},
            "Invalid job: inputPayload must be a JSON object, or absent or null, not a string.",
        ),
        (
            {"systemPrompt": {"text": "x"}},
            "Invalid job: systemPrompt must be a string, or absent or null, not an object.",
        ),
        ({"type": "x" * 64}, f'Invalid job: type must be absent or "agent.execute", not "{"x" * 64}".'),
        ({"type": "x" * 65}, 'Invalid job: type must be absent or "agent.execute", not a string of 65 characters.'),
        (
            {"timeoutSecs": 10**30},
            "Invalid job: timeoutSecs must be a JSON integer from 1 to 3600, or absent or null, "
            "not an integer of 31 digits.",
        ),
        (
            {"maxTokens": -(10**40)},
            "Invalid job: maxTokens must be a JSON integer of at least 1, or absent or null, "
            "not an integer of 41 digits.",
        ),
    ],
)
def test_rejection_message(changes: dict[str, Any], message: str) -> None:
    assert _rejected(envelope(job_data(changes))).message == message


def test_every_fault_is_named_in_field_order() -> None:
    body = envelope(job_data({"maxTokens": 0, "agentId": MISSING, "type": "x"}), {"replyTo": "$JS.API.x"})
    assert _rejected(body).message == (
        'Invalid job: type must be absent or "agent.execute", not "x"; '
        "agentId is missing (it must be a non-empty string of at most 256 characters); "
        "maxTokens must be a JSON integer of at least 1, or absent or null, not 0; "
        "replyTo must be dot-separated non-empty tokens of letters, digits, '_' and '-', not \"$JS.API.x\"."
    )


ACCEPTED: list[tuple[dict[str, Any], str, Any]] = [
    ({"type": MISSING}, "tier", "m5"),
    ({"model": MISSING}, "ref.requested_model", None),
    ({"model": None}, "ref.requested_model", None),
    ({"model": ""}, "ref.requested_model", None),
    ({"model": "ollama/llama3.2"}, "ref.requested_model", "ollama/llama3.2"),
    ({"model": "no-such-model"}, "ref.requested_model", "no-such-model"),  # the gate's business
    ({"systemPrompt": MISSING}, "system_prompt", None),
    ({"systemPrompt": None}, "system_prompt", None),
    ({"systemPrompt": ""}, "system_prompt", ""),
    ({"timeoutSecs": MISSING}, "timeout_secs", 300),
    ({"timeoutSecs": None}, "timeout_secs", 300),
    ({"timeoutSecs": 1}, "timeout_secs", 1),
    ({"timeoutSecs": 3600}, "timeout_secs", 3600),
    ({"maxTokens": MISSING}, "max_tokens", 4096),
    ({"maxTokens": None}, "max_tokens", 4096),
    ({"maxTokens": 1}, "max_tokens", 1),
    ({"maxTokens": 1_000_000}, "max_tokens", 1_000_000),  # lowered to the model's cap by the pipeline, after the gate
    ({"maxTokens": 2**63 - 1}, "max_tokens", 2**63 - 1),
    # Integers beyond 64 bits are integers (JSON.stringify(1e20) writes the first), lowered to the cap later.
    ({"maxTokens": 10**20}, "max_tokens", 10**20),
    ({"maxTokens": 2**64}, "max_tokens", 2**64),
    ({"agentId": "a" * 256}, "ref.agent_id", "a" * 256),
    ({"tier": "t" * 256}, "ref.tier", "t" * 256),
    ({"model": "é" * 256}, "ref.requested_model", "é" * 256),
    ({"inputPayload": MISSING}, "user_message", "{}"),
    ({"inputPayload": None}, "user_message", "{}"),
    ({"inputPayload": {}}, "user_message", "{}"),
    ({"tier": ""}, "tier", ""),  # any string passes the door; the gate says unknown_tier
    ({"tier": "M5"}, "ref.tier", "M5"),
    ({"agentId": " "}, "agent_id", " "),
]


@pytest.mark.parametrize(("changes", "attribute", "expected"), ACCEPTED, ids=lambda v: repr(v)[:30])
def test_accepted_value(changes: dict[str, Any], attribute: str, expected: Any) -> None:
    verdict = Door().open(encode(envelope(job_data(changes))))
    assert isinstance(verdict, Job), verdict
    assert attrgetter(attribute)(verdict) == expected
