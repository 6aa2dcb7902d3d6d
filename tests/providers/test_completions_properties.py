"""Properties of reading a Chat Completions answer (docs/contract.md §4, §5), over generated usage objects.

Whatever the counts, a token is billed once: raw input is `prompt_tokens` and output is `completion_tokens`,
cached and reasoning tokens inside them. Whatever the garbage, the reader either bills counts that are all
valid or raises with no usage at all; it never raises anything else.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.providers.answers import MAX_TOKEN_COUNT, MalformedAnswerError
from worker.providers.base import ProviderReply
from worker.providers.completions import reply_from_completion

pytestmark = pytest.mark.unit

COUNT = st.integers(min_value=0, max_value=MAX_TOKEN_COUNT)
NOT_A_COUNT = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=MAX_TOKEN_COUNT + 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _answer(usage: object, *, content: object = "Hi", finish_reason: object = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-5",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": usage,
    }


@st.composite
def valid_usage(draw: st.DrawFn) -> dict[str, Any]:
    prompt, completion = draw(COUNT), draw(COUNT)
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    details = draw(st.sampled_from(["absent", "null", "present"]))
    if details == "null":
        usage["prompt_tokens_details"] = usage["completion_tokens_details"] = None
    elif details == "present":
        usage["prompt_tokens_details"] = {"cached_tokens": draw(st.integers(0, prompt)), "audio_tokens": 0}
        usage["completion_tokens_details"] = {"reasoning_tokens": draw(st.integers(0, completion))}
    # The total is a count too: above the contract's limit it would make the answer malformed.
    if draw(st.booleans()) and prompt + completion <= MAX_TOKEN_COUNT:
        usage["total_tokens"] = prompt + completion
    return usage


@given(valid_usage())
def test_every_valid_usage_is_billed_once(usage: dict[str, Any]) -> None:
    reply = reply_from_completion(_answer(usage))

    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    assert reply.usage.raw_input == usage["prompt_tokens"]
    assert reply.usage.output_tokens == usage["completion_tokens"]
    assert (reply.usage.cache_read_input_tokens, reply.usage.input_tokens) == (cached, usage["prompt_tokens"] - cached)
    assert reply.usage.cache_creation_input_tokens == 0


@given(
    valid_usage(),
    st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"]),
    NOT_A_COUNT,
)
def test_one_bad_count_bills_nothing(usage: dict[str, Any], key: str, bad: object) -> None:
    if key in ("cached_tokens", "reasoning_tokens"):
        holder = "prompt_tokens_details" if key == "cached_tokens" else "completion_tokens_details"
        usage[holder] = {**(usage.get(holder) or {}), key: bad}
    else:
        usage[key] = bad

    with pytest.raises(MalformedAnswerError) as caught:
        reply_from_completion(_answer(usage))

    assert caught.value.usage is None


def _read(body: object) -> ProviderReply | MalformedAnswerError:
    """The reply, or the malformed-answer error; anything else raised fails the test."""
    try:
        return reply_from_completion(body)
    except MalformedAnswerError as exc:
        return exc


@given(valid_usage(), JSON_VALUE, JSON_VALUE)
def test_a_broken_choice_still_bills_its_valid_usage(usage: dict[str, Any], content: object, finish: object) -> None:
    read = _read(_answer(usage, content=content, finish_reason=finish))

    billed = read.usage
    assert billed is not None
    assert (billed.raw_input, billed.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    if isinstance(read, ProviderReply):
        assert isinstance(read.text, str)


@given(JSON_VALUE)
def test_any_json_is_a_reply_or_a_malformed_answer(body: object) -> None:
    assert isinstance(_read(body), ProviderReply | MalformedAnswerError)
