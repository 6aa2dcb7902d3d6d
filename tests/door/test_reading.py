"""Rule 2, the door: bodies that cannot be read as a job are dead-lettered with their reason."""

from __future__ import annotations

from typing import Any

import pytest

from testkit.jobs import JOB_ID, MISSING, RUN_ID, encode, envelope, job_data
from worker.contract import DlqReason
from worker.door import DeadLetter, Door
from worker.job import Job

pytestmark = pytest.mark.unit

VALID = encode(envelope())


def _dead_letter(body: bytes) -> DeadLetter:
    verdict = Door().open(body)
    assert isinstance(verdict, DeadLetter), verdict
    assert verdict.detail.endswith(".")
    assert verdict.detail[0].isupper()
    return verdict


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"   ", id="blank"),
        pytest.param(b"{", id="truncated"),
        pytest.param(VALID[:-1], id="unterminated"),
        pytest.param(VALID + b"}", id="trailing-garbage"),
        pytest.param(b"\xef\xbb\xbf" + VALID, id="byte-order-mark"),
        pytest.param(VALID.replace(b'"timeoutSecs": 300', b'"timeoutSecs": NaN'), id="nan"),
        pytest.param(VALID.replace(b'"timeoutSecs": 300', b'"timeoutSecs": Infinity'), id="infinity"),
        pytest.param(VALID.replace(b'"timeoutSecs": 300', b'"timeoutSecs": -Infinity'), id="minus-infinity"),
        pytest.param(VALID.replace(b'"timeoutSecs": 300', b'"timeoutSecs": 1e400'), id="overflowing-float"),
        pytest.param(VALID.replace(b"Summarise", b"Summ\xffrise"), id="invalid-utf8"),
        pytest.param(VALID.replace(b"Summarise", b"\\ud800Summarise"), id="lone-surrogate"),
        pytest.param(envelope().__repr__().encode(), id="python-repr"),
        pytest.param(VALID.decode().encode("utf-16"), id="utf16"),
        pytest.param(b'{"runId": "r", "deep": ' + b"[" * 1100 + b"]" * 1100 + b"}", id="deeper-than-1024"),
    ],
)
def test_unreadable_body_is_not_json(body: bytes) -> None:
    assert _dead_letter(body).reason is DlqReason.NOT_JSON


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b"[]", "an array"),
        (b"[" + VALID + b"]", "an array"),
        (b'"text"', '"text"'),
        (b"42", "42"),
        (b"1.5", "1.5"),
        (b"null", "null"),
        (b"true", "true"),
    ],
)
def test_non_object_body_is_not_object(body: bytes, shown: str) -> None:
    verdict = _dead_letter(body)
    assert verdict.reason is DlqReason.NOT_OBJECT
    assert verdict.detail == f"The body is {shown}, not a JSON object."


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (job_data({"runId": None}), "the job"),
        (job_data({"runId": MISSING}), "the job"),
        (envelope(job_data({"runId": None})), "the envelope's data"),
        (envelope(job_data({"runId": MISSING})), "the envelope's data"),
        # The run id is the job's: one at the envelope's top level does not count.
        ({**envelope(job_data({"runId": MISSING})), "runId": RUN_ID}, "the envelope's data"),
    ],
    ids=["bare-null", "bare-missing", "envelope-null", "envelope-missing", "envelope-top-level-only"],
)
def test_missing_run_id_is_no_run_id(body: dict[str, Any], where: str) -> None:
    verdict = _dead_letter(encode(body))
    assert verdict.reason is DlqReason.NO_RUN_ID
    assert verdict.detail == f"The runId of {where} is missing or null."


BAD_RUN_IDS = [
    ("", '""'),
    ("a" * 129, "a string of 129 characters"),
    ("run.1", '"run.1"'),
    ("run 1", '"run 1"'),
    ("run*", '"run*"'),
    (">", '">"'),
    ("run\n", '"run\\n"'),
    ("rün", '"rün"'),
    ("١٢٣", '"١٢٣"'),  # digits, but not ASCII digits
    (5, "5"),
    (5.5, "5.5"),
    (True, "true"),
    (False, "false"),
    ([], "an array"),
    (["r"], "an array"),
    ({}, "an object"),
]


@pytest.mark.parametrize(("run_id", "shown"), BAD_RUN_IDS, ids=[repr(value)[:20] for value, _ in BAD_RUN_IDS])
@pytest.mark.parametrize("enveloped", [False, True], ids=["bare", "envelope"])
def test_bad_run_id(run_id: object, shown: str, enveloped: bool) -> None:
    data = job_data({"runId": run_id})
    verdict = _dead_letter(encode(envelope(data) if enveloped else data))
    assert verdict.reason is DlqReason.BAD_RUN_ID
    where = "the envelope's data" if enveloped else "the job"
    assert verdict.detail == (
        f"The runId of {where} must be a string of 1 to 128 characters of letters, digits, '_' and '-', not {shown}."
    )


@pytest.mark.parametrize("run_id", ["a" * 128, "R", "_", "-", "run_1-A9"])
def test_run_id_of_subject_token_characters_is_read(run_id: str) -> None:
    verdict = Door().open(encode(envelope(job_data({"runId": run_id}))))
    assert isinstance(verdict, Job)
    assert verdict.ref.run_id == run_id


def test_envelope_data_is_the_job_and_its_id_the_job_id() -> None:
    # Top-level job fields of an envelope are not the job's.
    body = {**envelope(), "agentId": "top-level-agent", "tier": "internal"}
    verdict = Door().open(encode(body))
    assert isinstance(verdict, Job)
    assert (verdict.ref.job_id, verdict.ref.run_id) == (JOB_ID, RUN_ID)
    assert (verdict.agent_id, verdict.tier) == ("a9f3b2c1-0d4e-4f5a-8b6c-7d8e9f0a1b2c", "m5")


@pytest.mark.parametrize("envelope_id", [None, 5, 1.5, True, [], {"id": JOB_ID}])
def test_non_string_envelope_id_gives_no_job_id(envelope_id: object) -> None:
    verdict = Door().open(encode(envelope(changes={"id": envelope_id})))
    assert isinstance(verdict, Job)
    assert verdict.ref.job_id is None


@pytest.mark.parametrize("data", [None, "legacy", 5, [], [job_data()]], ids=repr)
def test_object_whose_data_is_not_an_object_is_a_bare_job(data: object) -> None:
    # A bare job has no job id, even when it carries an `id`.
    verdict = Door().open(encode(job_data({"data": data, "id": JOB_ID})))
    assert isinstance(verdict, Job)
    assert verdict.ref.job_id is None
    assert verdict.ref.run_id == RUN_ID
