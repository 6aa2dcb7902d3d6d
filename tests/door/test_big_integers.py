"""docs/contract.md §2: JSON integers are exact whatever their size; floats are not integers;
NaN, Infinity, a BOM: not JSON.

Bodies are written by hand here, as a publisher's bytes: `JSON.stringify(1e20)` writes `100000000000000000000`,
and Python's own `json` refuses to write an integer of more than 4,300 digits.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from testkit.jobs import encode, envelope, job_data
from worker.contract import DlqReason, ErrorCode
from worker.door import DeadLetter, Door, Rejected
from worker.exact_json import dumps_compact, has_long_digit_run, loads_exact
from worker.job import Job

pytestmark = pytest.mark.unit


def _body(**raw_fields: str) -> bytes:
    """The example job with each named field's value replaced by raw JSON text."""
    fields = {name: f"@{name}@" for name in raw_fields}
    text = encode(envelope(job_data(fields))).decode()
    for name, raw in raw_fields.items():
        text = text.replace(f'"@{name}@"', raw)
    return text.encode()


def _huge_first(body: bytes) -> bytes:
    """`body` with a 400-digit envelope `version` ahead of everything: orjson refuses it, the exact reading goes on."""
    huge = body.replace(b'"version": 1,', b'"version": 1' + b"0" * 400 + b",", 1)
    assert huge != body
    return huge


def _open(body: bytes) -> Job | Rejected | DeadLetter:
    return Door().open(body)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("100000000000000000000", 10**20),
        ("18446744073709551616", 2**64),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("9" * 5000, 2**64),  # more digits than Python converts: a stand-in past every cap
    ],
    ids=["1e20-as-written-by-JSON.stringify", "2**64", "30-digits", "5000-digits"],
)
def test_max_tokens_beyond_64_bits_is_an_integer(raw: str, expected: int) -> None:
    verdict = _open(_body(maxTokens=raw))

    assert isinstance(verdict, Job), verdict
    assert verdict.max_tokens == expected


@pytest.mark.parametrize(
    ("field", "raw", "shown"),
    [
        ("maxTokens", "1e20", "1e+20"),
        ("maxTokens", "1E+20", "1e+20"),
        ("maxTokens", "4096.0", "4096.0"),
        ("timeoutSecs", "300.0", "300.0"),
        ("timeoutSecs", "true", "true"),
        ("timeoutSecs", "3000000000000000000000", "an integer of 22 digits"),
        ("timeoutSecs", "9" * 5000, "an integer of 5,000 digits"),
        ("maxTokens", "-" + "9" * 5000, "an integer of 5,000 digits"),
    ],
)
def test_floats_and_out_of_range_integers_are_invalid_and_quoted_short(field: str, raw: str, shown: str) -> None:
    verdict = _open(_body(**{field: raw}))

    assert isinstance(verdict, Rejected), verdict
    assert verdict.code == ErrorCode.INVALID_JOB
    assert verdict.message.startswith(f"Invalid job: {field} must be a JSON integer ")
    assert verdict.message.endswith(f", not {shown}.")


def test_payload_integers_beyond_64_bits_keep_their_digits_in_the_user_message() -> None:
    payload = (
        '{"n": 123456789012345678901234567890, "neg": -9223372036854775809, "u64": 18446744073709551615,'
        ' "i64": -9223372036854775808, "f": 1.5, "e": 1e20, "text": "Grüße, 東京 \\u00e9",'
        ' "list": [100000000000000000000]}'
    )
    verdict = _open(_body(inputPayload=payload))

    assert isinstance(verdict, Job), verdict
    assert verdict.user_message == (
        '{"n":123456789012345678901234567890,"neg":-9223372036854775809,"u64":18446744073709551615,'
        '"i64":-9223372036854775808,"f":1.5,"e":1e+20,"text":"Grüße, 東京 é","list":[100000000000000000000]}'
    )


def test_a_message_that_is_a_huge_integer_is_sent_digit_for_digit() -> None:
    digits = "7" * 5000
    verdict = _open(_body(inputPayload=f'{{"message": {digits}}}'))

    assert isinstance(verdict, Job), verdict
    assert verdict.user_message == digits


def test_a_long_digit_run_inside_a_string_changes_nothing() -> None:
    payload = {"phone": "0123456789012345678901234", "n": 1.25, "m": 7}
    verdict = _open(encode(envelope(job_data({"inputPayload": payload}))))

    assert isinstance(verdict, Job), verdict
    assert verdict.user_message == '{"phone":"0123456789012345678901234","n":1.25,"m":7}'


def test_a_deeply_nested_payload_with_a_big_integer_is_rejected_not_crashed() -> None:
    depth = 900
    payload = "[" * depth + "1" + "0" * 30 + "]" * depth
    verdict = _open(_body(inputPayload=f'{{"x": {payload}}}'))

    assert isinstance(verdict, Rejected), verdict
    assert verdict.message == "Invalid job: inputPayload is nested too deeply to send as text."


@pytest.mark.parametrize(
    "body",
    [
        _body(maxTokens="NaN"),
        _body(maxTokens="Infinity"),
        _body(maxTokens="-Infinity"),
        _body(inputPayload='{"x": NaN}'),
        b"\xef\xbb\xbf" + encode(envelope()),
        _huge_first(_body(timeoutSecs="NaN")),
        _huge_first(_body(timeoutSecs="1e400")),
        _huge_first(_body(systemPrompt='"\\ud800"')),
        b"\xef\xbb\xbf" + _huge_first(encode(envelope())),
        _huge_first(_body(systemPrompt='"@"')).replace(b'"@"', b'"\xff"'),
    ],
    ids=[
        "NaN",
        "Infinity",
        "-Infinity",
        "NaN-in-payload",
        "byte-order-mark",
        "NaN-beside-a-400-digit-integer",
        "float-beyond-a-double-beside-one",
        "lone-surrogate-beside-one",
        "byte-order-mark-before-one",
        "invalid-utf-8-beside-one",
    ],
)
def test_nan_infinity_and_a_byte_order_mark_are_not_json(body: bytes) -> None:
    verdict = _open(body)

    assert isinstance(verdict, DeadLetter), verdict
    assert verdict.reason == DlqReason.NOT_JSON


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, -1, 2**63 - 1, -(2**63), 2**64 - 1, True, False, None, 0.5, 'é\n"\\']},
        {"big": 2**64, "neg": -(2**63) - 1, "nested": {"x": [10**40]}},
        [],
        "text",
    ],
)
def test_exact_reading_and_compact_writing_round_trip(value: Any) -> None:
    text = encode(value)

    exact = loads_exact(text)

    assert exact == value
    assert dumps_compact(exact) == encode(value).decode().replace(", ", ",").replace(": ", ":")
    if not has_long_digit_run(text):
        assert dumps_compact(exact) == orjson.dumps(value).decode()


def test_long_digit_runs_are_found_from_19_digits() -> None:
    assert has_long_digit_run(b'{"a": -9223372036854775809}')
    assert not has_long_digit_run(b'{"a": 922337203685477580, "b": 1.5e300}')
