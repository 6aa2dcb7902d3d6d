"""Monthly quotas (docs/contract.md §9): the most possible bill, the refusal rule, the usage key and its value.

Pure: the worker's usage stores (the JetStream key-value bucket, and the in-memory one of `replay` and
`demo`) read a value, ask these functions what the new value is, and write it back with a compare-and-set.
So every store decides by the same rules, and a rule lives here once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType

from catalog.billing import Usage, bill
from catalog.quote import clipped

__all__ = [
    "INPUT_SLACK_TOKENS",
    "MONTH",
    "USER_ID",
    "MonthlyUsage",
    "Reservation",
    "UsageValueError",
    "key_shown",
    "most_possible_bill",
    "refuses",
    "release",
    "reserve",
    "settle",
    "usage_key",
    "usage_month",
]

INPUT_SLACK_TOKENS = 64
"""Added to the input's UTF-8 length: the provider's own framing of system prompt and message."""

USER_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""With quotas on, a job's userId must be this (it is a key token): match with `fullmatch`, else invalid_job."""

MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
"""A usage month as keys spell it, `YYYY-MM`: match with `fullmatch`."""


def most_possible_bill(
    *, system_prompt: str | None, user_message: str, max_output_tokens: int, multiplier: Decimal
) -> int:
    """The most a run can be billed: no text token is shorter than one byte, and output stops at `maxTokens`.

    maxIn = UTF-8 bytes of the system prompt and the user message + 64; maxOut = the effective maxTokens;
    each billed like a real usage (ceil of tokens × multiplier), so the bound and the bill round alike.
    """
    max_in = _utf8_length(system_prompt or "") + _utf8_length(user_message) + INPUT_SLACK_TOKENS
    return bill(Usage(input_tokens=max_in, output_tokens=max_output_tokens), multiplier).total


def _utf8_length(text: str) -> int:
    # surrogatepass: a lone surrogate cannot come through the door's JSON reader, but counting never fails.
    return len(text.encode("utf-8", "surrogatepass"))


def usage_month(published: datetime) -> str:
    """`YYYY-MM`, the UTC month of a job's first publication (its JetStream timestamp; naive means UTC)."""
    moment = published.replace(tzinfo=UTC) if published.tzinfo is None else published.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def usage_key(user_id: str, month: str) -> str:
    """The bucket key of one user's month: `<userId>.<YYYY-MM>`."""
    return f"{user_id}.{month}"


def key_shown(key: str) -> str:
    """A usage key as a log line or message shows it: the userId cut to 64 characters (docs/contract.md §6).

    With quotas on a userId may be 128 characters long, and it is a value taken from the job.
    """
    user, dot, month = key.rpartition(".")
    return f"{clipped(user)}{dot}{month}" if dot else clipped(key) or ""


class UsageValueError(ValueError):
    """A stored usage value that is not `{"billed": int, "reserved": {"<runId>": int, ...}}`."""


@dataclass(frozen=True, slots=True)
class MonthlyUsage:
    """One user's month: tokens billed by settled runs, and the most possible bill of each run in flight."""

    billed: int = 0
    reserved: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def reserved_tokens(self) -> int:
        return sum(self.reserved.values())

    def remaining(self, quota: int | None) -> int | None:
        """What a new reservation may still take (never below 0); None when the quota is unlimited."""
        return None if quota is None else max(0, quota - self.billed - self.reserved_tokens)

    def to_json(self) -> bytes:
        return json.dumps({"billed": self.billed, "reserved": dict(self.reserved)}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> MonthlyUsage:
        try:
            value = json.loads(data, parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UsageValueError(f"not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise UsageValueError("not a JSON object")
        billed, reserved = value.get("billed", 0), value.get("reserved", {})
        if not _count(billed):
            raise UsageValueError("billed is not a non-negative integer")
        if not isinstance(reserved, dict) or not all(_count(amount) for amount in reserved.values()):
            raise UsageValueError("reserved is not an object of non-negative integers")
        return cls(billed, MappingProxyType(reserved))


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def refuses(usage: MonthlyUsage, amount: int, quota: int | None) -> bool:
    """billed + everything reserved + this reservation above the quota? Exactly at the quota is allowed."""
    return quota is not None and usage.billed + usage.reserved_tokens + amount > quota


@dataclass(frozen=True, slots=True)
class Reservation:
    """What reserving decided. `new` is the value to write back; None means nothing to write."""

    refused: bool
    reused: bool
    new: MonthlyUsage | None


def reserve(usage: MonthlyUsage, run_id: str, amount: int, quota: int | None) -> Reservation:
    """Reserve `amount` for `run_id`, unless the run already holds a reservation (reused) or it would not fit.

    A run whose most possible bill is 0 is never refused and leaves nothing behind.
    """
    if run_id in usage.reserved:
        return Reservation(refused=False, reused=True, new=None)
    if amount == 0:
        return Reservation(refused=False, reused=False, new=None)
    if refuses(usage, amount, quota):
        return Reservation(refused=True, reused=False, new=None)
    reserved = MappingProxyType({**usage.reserved, run_id: amount})
    return Reservation(refused=False, reused=False, new=MonthlyUsage(usage.billed, reserved))


def settle(usage: MonthlyUsage, run_id: str, billed_tokens: int) -> MonthlyUsage | None:
    """Remove the run's reservation and add its stored bill; None when it holds none (settled, or never reserved).

    "Reservation present" means "not yet settled", which is what makes settling happen once.
    """
    if run_id not in usage.reserved:
        return None
    reserved = MappingProxyType({key: value for key, value in usage.reserved.items() if key != run_id})
    return MonthlyUsage(usage.billed + billed_tokens, reserved)


def release(usage: MonthlyUsage, run_id: str) -> MonthlyUsage | None:
    """Remove the run's reservation without billing (its run was already settled by someone else)."""
    return settle(usage, run_id, 0)
