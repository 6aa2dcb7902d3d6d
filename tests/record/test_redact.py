"""`record --redact`: no prompt text left, every size the worker reads kept, the door's verdict unchanged."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testkit.jobs import example_envelope, example_job
from worker.door import DeadLetter, Door, Rejected
from worker.job import Job
from worker.redact import redact_body, redact_headers, redacted_text

pytestmark = pytest.mark.unit

DOOR = Door()
PLACEHOLDER_CHARS = set("redacted é…𝐱")
text = st.text(min_size=1, max_size=60)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), text)
payload_value = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=8
)


def sizes(verdict: Job) -> tuple[int, int, int, int]:
    prompt = verdict.system_prompt or ""
    return len(prompt), len(prompt.encode()), len(verdict.user_message), len(verdict.user_message.encode())


@settings(max_examples=200, deadline=None)
@given(prompt=text, message=st.one_of(text, payload_value), extra=st.dictionaries(text, payload_value, max_size=3))
def test_a_redacted_job_keeps_its_sizes_and_verdict_and_loses_its_text(
    prompt: str, message: Any, extra: dict[str, Any]
) -> None:
    payload = {**extra, "message": message}
    job = example_job(systemPrompt=prompt, inputPayload=payload)
    # stdlib json: integers beyond 64 bits are written, as a publisher may write them.
    body = json.dumps(example_envelope(job, job_id="j", reply_to=None), ensure_ascii=False).encode()

    before, after = DOOR.open(body), DOOR.open(redact_body(body))

    assert type(after) is type(before)
    if isinstance(before, Job):
        assert isinstance(after, Job)
        assert sizes(after) == sizes(before)
        assert after.ref == before.ref
        assert set(after.system_prompt or "") <= PLACEHOLDER_CHARS
        if isinstance(message, str):
            assert set(after.user_message) <= PLACEHOLDER_CHARS
    elif isinstance(before, Rejected):
        assert isinstance(after, Rejected)
        assert after.code == before.code


def test_placeholders_keep_characters_and_bytes_and_need_no_escaping() -> None:
    original = 'Ünïcode “quotes” "plain" \\ \n\t 𝄞 end'
    placeholder = redacted_text(original)
    assert (len(placeholder), len(placeholder.encode())) == (len(original), len(original.encode()))
    assert orjson.dumps(placeholder) == b'"' + placeholder.encode() + b'"'
    assert placeholder == "éeéacted…redact…d redacted red𝐱cted"


def test_a_payload_without_a_message_is_rendered_to_the_same_length() -> None:
    payload = {"notes": ['say "hi"\n', {"k": "ü"}], "n": 12345678901234567890123}
    body = orjson.dumps(example_job(inputPayload={"notes": payload["notes"]}))[:-1] + b',"x":12345678901234567890123}'
    before, after = DOOR.open(body), DOOR.open(redact_body(body))
    assert isinstance(before, Job)
    assert isinstance(after, Job)
    assert sizes(after) == sizes(before)
    assert "hi" not in after.user_message
    assert b"12345678901234567890123" in redact_body(body)  # big integers kept exactly


@pytest.mark.parametrize("body", [b"{not json", b"\xef\xbb\xbf{}", b"\xff\xfe", b'["secret prompt", 1]', b'"secret"'])
def test_unreadable_bodies_stay_unreadable_for_the_same_reason(body: bytes) -> None:
    before, after = DOOR.open(body), DOOR.open(redact_body(body))
    assert isinstance(before, DeadLetter)
    assert isinstance(after, DeadLetter)
    assert after.reason == before.reason
    assert b"secret" not in redact_body(body)


def test_the_signature_header_is_dropped_and_the_others_kept() -> None:
    headers = {"Maschina-Signature": "sha256=00", "maschina-signature": "x", "traceparent": "00-ab", "X": ""}
    assert redact_headers(headers) == {"traceparent": "00-ab", "X": ""}
    assert redact_headers(None) is None
