"""The recorded seed-format payloads read exactly as `expected.json` says, field by field."""

from __future__ import annotations

import dataclasses

import pytest

from tests.fixtures.jobs import JOBS_DIR, RecordedJob, recorded_jobs
from worker.door import DeadLetter, Door, Rejected
from worker.job import Job

pytestmark = pytest.mark.unit

RECORDED = recorded_jobs()
REF_FIELDS = ("run_id", "job_id", "agent_id", "user_id", "tier", "requested_model", "reply_to")


def test_every_recorded_file_has_an_expectation() -> None:
    on_disk = {path.name for path in JOBS_DIR.glob("*.json")} - {"expected.json"}
    assert on_disk == {recorded.name for recorded in RECORDED}
    assert len(on_disk) >= 20


@pytest.mark.parametrize("recorded", RECORDED, ids=lambda recorded: recorded.name)
def test_recorded_payload_reads_as_expected(recorded: RecordedJob) -> None:
    verdict = Door().open(recorded.body)
    expected = recorded.expected
    assert not isinstance(verdict, DeadLetter)
    assert {field: getattr(verdict.ref, field) for field in REF_FIELDS} == {
        field: expected[field] for field in REF_FIELDS
    }
    if expected["verdict"] == "job":
        assert isinstance(verdict, Job)
        fields = {field.name for field in dataclasses.fields(Job)} - {"ref"}
        assert set(expected) == {"verdict", *REF_FIELDS, *fields}
        assert {field: getattr(verdict, field) for field in fields} == {field: expected[field] for field in fields}
    else:
        assert isinstance(verdict, Rejected)
        assert set(expected) == {"verdict", "code", "message", *REF_FIELDS}
        assert (verdict.code, verdict.message) == (expected["code"], expected["message"])
