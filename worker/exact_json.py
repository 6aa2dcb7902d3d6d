"""JSON integers of any size, read and written exactly (docs/contract.md §2), without slowing the common job.

orjson reads every job (it is several times faster, and refuses what the contract calls not JSON), but it
reads an integer beyond 64 bits as a float (`100000000000000000000` becomes `1e+20`), refuses one beyond a
double's range (over 308 digits) as "infinity", and writes none beyond 64 bits. The door therefore reads a
job again with `loads_exact` when orjson refused a number as infinite, or when a float in its reading may
have been such an integer: a float `maxTokens` or `timeoutSecs`, or a payload rendered as JSON while the
body holds a run of 19 digits (the shortest integer orjson does not keep is `-9223372036854775809`).

`loads_exact` refuses what orjson refuses (NaN, Infinity, a float beyond a double, a byte-order mark,
invalid UTF-8, lone surrogates) with `NotJsonError`. Integers beyond 64 bits come back as `ExactInt`: an
`int` (pydantic and comparisons see its value) that keeps its JSON text, so `dumps_compact` writes it digit
for digit. One longer than Python converts (`sys.get_int_max_str_digits`, 4,300 digits) gets a stand-in
value beyond every limit of the contract, with the same sign; its text is still exact.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

__all__ = ["ExactInt", "NotJsonError", "dumps_compact", "has_long_digit_run", "loads_exact", "refused_as_infinite"]

#: The shortest integer orjson reads as a float has 19 digits (`-9223372036854775809`).
_LONGEST_SAFE = 18
_LONG_RUN = b"0" * (_LONGEST_SAFE + 1)
#: Every ASCII digit as "0", every other byte as a space: a digit run of the body is then a run of zeros.
_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1
_STAND_IN = 2**64


class NotJsonError(ValueError):
    """What orjson would have refused too; the text says why."""


class ExactInt(int):
    """An integer beyond 64 bits with its exact JSON text (its value is a stand-in past 4,300 digits)."""

    text: str

    def __new__(cls, value: int, text: str) -> ExactInt:
        number = super().__new__(cls, value)
        number.text = text
        return number

    @property
    def digits(self) -> int:
        return len(self.text.lstrip("-"))


def has_long_digit_run(body: bytes) -> bool:
    """Whether `body` holds 19 digits in a row anywhere (inside strings too: then one reading too many, no harm)."""
    return _LONG_RUN in body.translate(_DIGITS)


def refused_as_infinite(error: orjson.JSONDecodeError) -> bool:
    """Whether orjson refused a number beyond a double's range, which may be an integer (read it with `loads_exact`)."""
    return str(error).startswith("number is infinity")


def loads_exact(body: bytes) -> Any | None:
    """`body` read with exact integers; None when it is nested too deeply for Python to read.

    Raises `NotJsonError` for what orjson refuses too.
    """
    try:
        value = json.loads(body.decode("utf-8"), parse_int=_integer, parse_float=_finite, parse_constant=_refused)
    except RecursionError:
        return None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NotJsonError: all ValueErrors
        raise NotJsonError(str(exc)) from None
    _refuse_lone_surrogates(value)
    return value


def dumps_compact(value: Any) -> str:
    """Compact JSON text (separators `,` and `:`, non-ASCII kept), integers of any size exactly.

    Raises `orjson.JSONEncodeError` beyond 254 levels of nesting, as orjson does.
    """
    return orjson.dumps(value, default=_fragment, option=orjson.OPT_PASSTHROUGH_SUBCLASS).decode()


def _integer(text: str) -> int:
    if len(text) <= _LONGEST_SAFE:
        return int(text)
    try:
        value = int(text)
    except ValueError:  # more digits than Python converts
        return ExactInt(-_STAND_IN if text.startswith("-") else _STAND_IN, text)
    return value if _INT64_MIN <= value <= _UINT64_MAX else ExactInt(value, text)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotJsonError(f"number is infinity when parsed as double: {text[:20]}")
    return value


def _refused(text: str) -> Any:
    raise NotJsonError(f"{text} is not JSON")


def _refuse_lone_surrogates(value: Any) -> None:
    """orjson refuses `"\\ud800"` without its pair; the standard library reads it: refuse it here too."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            texts: list[str] = [item]
        elif isinstance(item, dict):
            texts = list(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
            continue
        else:
            continue
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise NotJsonError("a string holds a lone surrogate") from None


def _fragment(value: object) -> orjson.Fragment:
    if isinstance(value, ExactInt):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON")
