"""With quotas on, a job's userId is a usage key's token (docs/contract.md §9): else `invalid_job`."""

from __future__ import annotations

import pytest

from testkit.jobs import encode, envelope, job_data
from worker.contract import ErrorCode
from worker.door import Door, Rejected
from worker.job import Job

pytestmark = pytest.mark.unit

QUOTAS = Door(quotas=True)


@pytest.mark.parametrize("user", ["u1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "a", "A_b-9", "x" * 128])
def test_key_tokens_pass(user: str) -> None:
    assert isinstance(QUOTAS.open(encode(envelope(job_data({"userId": user})))), Job)


@pytest.mark.parametrize("user", ["user 1", "user.1", "user*", "user>", "é", "x" * 129, "u\n"])
def test_anything_else_is_invalid_job_with_quotas_on_only(user: str) -> None:
    body = encode(envelope(job_data({"userId": user})))
    verdict = QUOTAS.open(body)
    assert isinstance(verdict, Rejected)
    assert verdict.code is ErrorCode.INVALID_JOB
    assert verdict.message.startswith("Invalid job: userId must be 1 to 128 letters, digits, '_' and '-' when quotas")
    assert verdict.ref.user_id == user  # still echoed, as any string userId is
    assert isinstance(Door().open(body), Job)


def test_a_user_id_already_faulted_is_named_once() -> None:
    verdict = QUOTAS.open(encode(envelope(job_data({"userId": ""}))))
    assert isinstance(verdict, Rejected)
    assert verdict.message.count("userId") == 1


def test_invalid_user_beats_input_too_large() -> None:
    # Rule 4: a job with both faults is invalid_job.
    body = encode(envelope(job_data({"userId": "user 1", "inputPayload": {"message": "x" * 100_001}})))
    verdict = QUOTAS.open(body)
    assert isinstance(verdict, Rejected)
    assert verdict.code is ErrorCode.INVALID_JOB
