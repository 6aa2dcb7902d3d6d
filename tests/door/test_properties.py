"""Property: whatever arrives, `Door.open` returns a verdict and never raises."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testkit.jobs import encode, envelope, job_data
from tests.contract import JOB_FIELDS
from worker.door import DeadLetter, Door, Rejected
from worker.job import Job

pytestmark = pytest.mark.unit

DOOR = Door()
SIGNED_DOOR = Door(signing_key=b"k", reply_prefixes=("_INBOX.", "api.replies."))
VERDICTS = (Job, Rejected, DeadLetter)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
# Job-shaped objects: the contract's field names with arbitrary values, so validation is reached, not just the door.
job_shaped = st.dictionaries(st.sampled_from(sorted(JOB_FIELDS)), json_values).map(lambda changes: job_data(changes))
bodies = st.one_of(
    json_values,
    job_shaped,
    job_shaped.map(lambda data: envelope(data)),
    st.tuples(job_shaped, json_values).map(lambda pair: envelope(pair[0], {"replyTo": pair[1], "id": pair[1]})),
)


def _check(verdict: object) -> None:
    assert isinstance(verdict, VERDICTS)
    if isinstance(verdict, Job):
        assert 1 <= verdict.timeout_secs <= 3600
        assert verdict.max_tokens >= 1
        assert len(verdict.user_message) <= 100_000
        assert verdict.agent_id
        assert verdict.user_id


@settings(deadline=None)
@given(st.binary())
def test_arbitrary_bytes(body: bytes) -> None:
    _check(DOOR.open(body))


@settings(deadline=None, max_examples=200)
@given(bodies)
def test_arbitrary_json(value: Any) -> None:
    # The stdlib writes NaN, Infinity and integers of any size, all of which a publisher could send.
    _check(DOOR.open(json.dumps(value).encode()))


@settings(deadline=None)
@given(bodies, st.dictionaries(st.sampled_from(["Maschina-Signature", "Nats-Msg-Id", "x"]), st.text()))
def test_arbitrary_headers(value: Any, headers: dict[str, str]) -> None:
    verdict = SIGNED_DOOR.open(encode(value), headers)
    assert isinstance(verdict, DeadLetter)  # no arbitrary header is the right signature
    assert verdict.reason == "bad_signature"
