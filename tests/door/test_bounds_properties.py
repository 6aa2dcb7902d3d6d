"""Properties of the door over generated jobs: bounded echoes and quotes (docs/contract.md §6), exact integers (§2)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import default_catalog, gate
from catalog.gate import Denied
from testkit.jobs import encode, envelope, job_data
from worker.door import Door, Rejected
from worker.job import Job

pytestmark = pytest.mark.unit

# Short and long strings, around the limits, with characters of every UTF-8 width.
_TEXT = st.text(alphabet=st.sampled_from('aZ9-_ é東😀"\\\n'), min_size=0, max_size=600) | st.sampled_from(
    ["m5", "claude-sonnet-4-6", "", "x" * 256, "x" * 257, "é" * 64, "é" * 65]
)


def _quotes_over_64(message: str, value: str) -> bool:
    """Whether `message` holds 65 consecutive characters of `value`."""
    return any(value[i : i + 65] in message for i in range(len(value) - 64))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(job_id=_TEXT, agent_id=_TEXT, user_id=_TEXT, tier=_TEXT, model=_TEXT)
def test_echoes_are_strings_of_at_most_256_and_messages_quote_at_most_64(
    job_id: str, agent_id: str, user_id: str, tier: str, model: str
) -> None:
    fields = {"agentId": agent_id, "userId": user_id, "tier": tier, "model": model}
    verdict = Door().open(encode(envelope(job_data(fields), {"id": job_id})))

    assert isinstance(verdict, Job | Rejected), verdict
    ref = verdict.ref
    for echoed, value in ((ref.job_id, job_id), (ref.agent_id, agent_id), (ref.user_id, user_id), (ref.tier, tier)):
        assert echoed == (value if len(value) <= 256 else None)
    assert ref.requested_model == (model if 0 < len(model) <= 256 else None)
    messages = [verdict.message] if isinstance(verdict, Rejected) else []
    if isinstance(verdict, Job):
        decision = gate(default_catalog(), verdict.tier, ref.requested_model)
        messages += [decision.message] if isinstance(decision, Denied) else []
    for message in messages:
        for value in (job_id, agent_id, user_id, tier, model):
            assert not _quotes_over_64(message, value), (message, value)
        assert len(message) < 1000


_BIG = st.integers(min_value=-(10**400), max_value=10**400)
_PAYLOAD = st.recursive(
    _BIG | st.booleans() | st.none() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(payload=st.dictionaries(st.sampled_from(["n", "list", "é", "message2"]), _PAYLOAD, max_size=4))
def test_payload_integers_of_any_size_reach_the_message_exactly(payload: dict[str, Any]) -> None:
    verdict = Door().open(encode(envelope(job_data({"inputPayload": payload}))))

    assert isinstance(verdict, Job), verdict
    assert verdict.user_message == json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=100, deadline=None)
@given(max_tokens=st.integers(min_value=1, max_value=10**400), timeout=st.integers(min_value=3601, max_value=10**400))
def test_any_integer_max_tokens_is_accepted_and_timeouts_beyond_an_hour_are_not(max_tokens: int, timeout: int) -> None:
    accepted = Door().open(encode(envelope(job_data({"maxTokens": max_tokens}))))
    refused = Door().open(encode(envelope(job_data({"timeoutSecs": timeout}))))

    assert isinstance(accepted, Job), accepted
    assert accepted.max_tokens == max_tokens
    assert isinstance(refused, Rejected), refused
    assert refused.message.startswith("Invalid job: timeoutSecs must be a JSON integer from 1 to 3600")
    assert len(refused.message) < 200
