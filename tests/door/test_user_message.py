"""Rule 4, the user message: `message` when a string, else compact JSON; over 100,000 code points is too large."""

from __future__ import annotations

from typing import Any

import pytest

from testkit.jobs import MISSING, REPLY_TO, encode, envelope, job_data
from worker.contract import ErrorCode
from worker.door import Door, Rejected
from worker.job import Job

pytestmark = pytest.mark.unit


def _open(payload: Any) -> Job | Rejected:
    verdict = Door().open(encode(envelope(job_data({"inputPayload": payload}))))
    assert isinstance(verdict, Job | Rejected), verdict
    return verdict


def _message(payload: Any) -> str:
    verdict = _open(payload)
    assert isinstance(verdict, Job), verdict
    return verdict.user_message


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"message": "Summarise the attached notes."}, "Summarise the attached notes."),
        ({"message": "hi", "context": {"a": 1}}, "hi"),
        ({"message": ""}, ""),
        ({"message": '  line one\nline "two"\t😀  '}, '  line one\nline "two"\t😀  '),
        ({"message": None}, "null"),
        ({"message": 5}, "5"),
        ({"message": -1.5}, "-1.5"),
        ({"message": True}, "true"),
        ({"message": []}, "[]"),
        ({"message": {}}, "{}"),
        ({"message": {"b": 1, "a": "é"}, "other": 2}, '{"b":1,"a":"é"}'),
        ({"message": ["Zürich", "東京", "😀", None, 1.25]}, '["Zürich","東京","😀",null,1.25]'),
        (
            {"message": {"q": 'say "hi"\\ then\nleave', "ctl": "\u0001"}},
            '{"q":"say \\"hi\\"\\\\ then\\nleave","ctl":"\\u0001"}',
        ),
        ({}, "{}"),
        (MISSING, "{}"),
        (None, "{}"),
        (
            {"task": "translate", "text": "Grüße", "n": [1, {"k": None}]},
            '{"task":"translate","text":"Grüße","n":[1,{"k":null}]}',
        ),
        ({"z": 1, "a": 2, "m": 3}, '{"z":1,"a":2,"m":3}'),  # key order as published
        ({"Message": "case matters"}, '{"Message":"case matters"}'),
        ({"messages": ["plural is not message"]}, '{"messages":["plural is not message"]}'),
        ({"message": 1e20}, "1e+20"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_user_message(payload: Any, message: str) -> None:
    assert _message(payload) == message


def test_published_integers_beyond_64_bits_keep_their_digits_in_the_message() -> None:
    assert _message({"message": {"n": 2**70}}) == '{"n":1180591620717411303424}'


def test_payload_too_deep_to_render_is_invalid_job() -> None:
    deep: Any = "bottom"
    for _ in range(300):
        deep = [deep]
    verdict = _open({"message": deep})
    assert isinstance(verdict, Rejected)
    assert (verdict.code, verdict.message) == (
        ErrorCode.INVALID_JOB,
        "Invalid job: inputPayload is nested too deeply to send as text.",
    )


TOO_LARGE = "The user message is {:,} characters long; the limit is 100,000."


@pytest.mark.parametrize(
    ("payload", "length"),
    [
        ({"message": "x" * 100_000}, 100_000),
        ({"message": "😀" * 100_000}, 100_000),  # code points, not bytes or UTF-16 units
        ({"message": ["x" * 99_996]}, 100_000),  # ["…"]
        ({"t": "x" * 99_992}, 100_000),  # {"t":"…"}
    ],
    ids=["string", "emoji", "rendered-message", "rendered-payload"],
)
def test_message_of_100000_code_points_is_accepted(payload: Any, length: int) -> None:
    assert len(_message(payload)) == length


@pytest.mark.parametrize(
    ("payload", "length"),
    [
        ({"message": "x" * 100_001}, 100_001),
        ({"message": "😀" * 100_001}, 100_001),
        ({"message": ["x" * 99_997]}, 100_001),
        ({"t": "x" * 99_993}, 100_001),
        ({"message": "é" * 250_000}, 250_000),
    ],
    ids=["string", "emoji", "rendered-message", "rendered-payload", "far-over"],
)
def test_longer_message_is_input_too_large(payload: Any, length: int) -> None:
    verdict = _open(payload)
    assert isinstance(verdict, Rejected)
    assert (verdict.code, verdict.message) == (ErrorCode.INPUT_TOO_LARGE, TOO_LARGE.format(length))
    assert verdict.ref.reply_to == REPLY_TO
    assert verdict.ref.requested_model == "claude-sonnet-4-6"


def test_invalid_job_wins_over_input_too_large() -> None:
    body = envelope(job_data({"inputPayload": {"message": "x" * 100_001}, "agentId": ""}))
    verdict = Door().open(encode(body))
    assert isinstance(verdict, Rejected)
    assert verdict.code is ErrorCode.INVALID_JOB
    assert verdict.message == 'Invalid job: agentId must be a non-empty string of at most 256 characters, not "".'


def test_unknown_fields_anywhere_are_ignored() -> None:
    data = job_data(
        {
            "priority": 5,
            "tags": ["a"],
            "run_id": 7,  # snake_case names are not the contract's: unknown, ignored
            "timeout_secs": 0,
            "inputPayload": {"message": "hi", "attachments": [{"id": 1}]},
        }
    )
    body = envelope(data, {"traceId": "4bf92f35", "source": {"service": "api"}, "version": 99, "timestamp": 5})
    verdict = Door().open(encode(body))
    assert isinstance(verdict, Job)
    assert (verdict.user_message, verdict.timeout_secs) == ("hi", 300)


def test_snake_case_names_do_not_stand_in_for_camel_case() -> None:
    body = envelope(job_data({"agentId": MISSING, "agent_id": "a9f3b2c1"}))
    verdict = Door().open(encode(body))
    assert isinstance(verdict, Rejected)
    assert (
        verdict.message == "Invalid job: agentId is missing (it must be a non-empty string of at most 256 characters)."
    )
    assert verdict.ref.agent_id is None
