"""Monthly quotas' arithmetic (docs/contract.md §9): the most possible bill, the refusal rule, key and month."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog import Usage, bill
from catalog.quota import (
    MonthlyUsage,
    UsageValueError,
    most_possible_bill,
    refuses,
    release,
    reserve,
    settle,
    usage_key,
    usage_month,
)

pytestmark = pytest.mark.unit

D = Decimal


def possible(system: str | None, message: str, max_tokens: int, multiplier: str) -> int:
    return most_possible_bill(
        system_prompt=system, user_message=message, max_output_tokens=max_tokens, multiplier=D(multiplier)
    )


@pytest.mark.parametrize(
    ("system", "message", "max_tokens", "multiplier", "expected"),
    [
        # maxIn = 10 + 6 + 64 = 80; maxOut = 100.
        ("0123456789", "hello!", 100, "1", 80 + 100),
        ("0123456789", "hello!", 100, "15", 1200 + 1500),
        ("0123456789", "hello!", 100, "0", 0),
        # Fractional: each side rounded up on its own. 80 × 0.25 = 20; 101 × 0.25 = 25.25 → 26.
        ("0123456789", "hello!", 101, "0.25", 20 + 26),
        # 81 × 1.5 = 121.5 → 122; 7 × 1.5 = 10.5 → 11: 133, where the sum's 88 × 1.5 would give 132.
        ("0123456789", "hello!!", 7, "1.5", 122 + 11),
        # No system prompt: maxIn is the message and the slack alone.
        (None, "", 1, "1", 64 + 1),
        # UTF-8 bytes, not characters: "é" is 2 bytes, "€" 3, "😀" 4.
        ("é", "€😀", 10, "1", 2 + 3 + 4 + 64 + 10),
        # A tiny multiplier still rounds each side up to a whole token.
        (None, "x", 1, "0.000000000000000001", 1 + 1),
    ],
)
def test_most_possible_bill(system: str | None, message: str, max_tokens: int, multiplier: str, expected: int) -> None:
    assert possible(system, message, max_tokens, multiplier) == expected


def test_rounding_is_per_side_not_on_the_sum() -> None:
    # maxIn 65 × 0.5 = 32.5 → 33; maxOut 1 × 0.5 = 0.5 → 1: 34, where ceil(66 × 0.5) would be 33.
    assert possible(None, "a", 1, "0.5") == 34


@given(
    system=st.text(max_size=50),
    message=st.text(max_size=50),
    max_tokens=st.integers(1, 10**20),
    multiplier=st.decimals(min_value=0, max_value=100, places=3, allow_nan=False, allow_infinity=False),
)
def test_most_possible_bill_bounds_every_real_bill_within_it(
    system: str, message: str, max_tokens: int, multiplier: Decimal
) -> None:
    bound = possible(system, message, max_tokens, str(multiplier))
    max_in = len(system.encode("utf-8", "surrogatepass")) + len(message.encode("utf-8", "surrogatepass")) + 64
    assert bill(Usage(max_in, max_tokens), multiplier).total == bound
    assert bill(Usage(max_in // 2, max_tokens // 2), multiplier).total <= bound


QUOTA = 1_000


@pytest.mark.parametrize(
    ("billed", "reserved", "amount", "refused"),
    [
        (0, {}, 1_000, False),  # exactly the quota: allowed
        (0, {}, 1_001, True),  # one token over: refused
        (400, {"a": 300}, 300, False),  # 400 + 300 + 300 = 1,000
        (400, {"a": 300}, 301, True),
        (400, {"a": 300, "b": 1}, 300, True),  # every reservation counts
        (1_000, {}, 1, True),
    ],
)
def test_refusal_boundary(billed: int, reserved: dict[str, int], amount: int, refused: bool) -> None:
    usage = MonthlyUsage(billed, reserved)
    assert refuses(usage, amount, QUOTA) is refused
    decision = reserve(usage, "run-x", amount, QUOTA)
    assert decision.refused is refused
    if refused:
        assert decision.new is None
    else:
        assert decision.new == MonthlyUsage(billed, {**reserved, "run-x": amount})


def test_unlimited_is_never_refused_but_still_counted() -> None:
    decision = reserve(MonthlyUsage(10**30, {"a": 10**30}), "run-x", 10**30, None)
    assert not decision.refused
    assert decision.new is not None
    assert decision.new.reserved["run-x"] == 10**30


def test_a_zero_bill_is_never_refused_and_leaves_nothing() -> None:
    full = MonthlyUsage(QUOTA, {})
    decision = reserve(full, "run-x", 0, QUOTA)
    assert (decision.refused, decision.reused, decision.new) == (False, False, None)
    # A quota of 0 (the access tier) refuses every run that could cost anything, and no free one.
    assert reserve(MonthlyUsage(), "run-x", 0, 0).refused is False
    assert reserve(MonthlyUsage(), "run-x", 1, 0).refused is True


def test_a_reservation_present_is_reused_even_over_the_quota() -> None:
    usage = MonthlyUsage(900, {"run-x": 100})
    decision = reserve(usage, "run-x", 100, QUOTA)
    assert (decision.refused, decision.reused, decision.new) == (False, True, None)


def test_settle_moves_the_reservation_into_billed_once() -> None:
    usage = MonthlyUsage(100, {"run-x": 500, "run-y": 7})
    settled = settle(usage, "run-x", 321)
    assert settled == MonthlyUsage(421, {"run-y": 7})
    assert settle(settled, "run-x", 321) is None  # reservation gone: already settled
    assert release(usage, "run-y") == MonthlyUsage(100, {"run-x": 500})
    assert release(usage, "run-z") is None


def test_value_round_trips_as_the_contract_json() -> None:
    usage = MonthlyUsage(12, {"run-a": 5, "run-b": 10**25})
    assert usage.to_json() == b'{"billed":12,"reserved":{"run-a":5,"run-b":10000000000000000000000000}}'
    assert MonthlyUsage.from_json(usage.to_json()) == usage
    assert MonthlyUsage.from_json(b"{}") == MonthlyUsage()
    assert usage.reserved_tokens == 10**25 + 5
    assert MonthlyUsage(990, {"a": 5}).remaining(1_000) == 5
    assert MonthlyUsage(1_200, {}).remaining(1_000) == 0
    assert MonthlyUsage(1_200, {}).remaining(None) is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"billed": -1}',
        b'{"billed": 1.5}',
        b'{"billed": true}',
        b'{"billed": NaN}',
        b'{"reserved": []}',
        b'{"reserved": {"a": "5"}}',
        b"\xff",
    ],
)
def test_a_damaged_value_is_refused_not_guessed(body: bytes) -> None:
    with pytest.raises(UsageValueError):
        MonthlyUsage.from_json(body)


@pytest.mark.parametrize(
    ("published", "month"),
    [
        (datetime(2026, 3, 8, 12, 0, tzinfo=UTC), "2026-03"),
        (datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "2026-12"),
        (datetime(2027, 1, 1, 0, 0, tzinfo=UTC), "2027-01"),
        # Another zone is converted: 1 March 01:00 at UTC+2 is still February in UTC.
        (datetime(2026, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))), "2026-02"),
        (datetime(2026, 2, 28, 23, 0, tzinfo=timezone(timedelta(hours=-3))), "2026-03"),
        # Naive means UTC.
        (datetime(2026, 7, 1, 0, 0), "2026-07"),
    ],
)
def test_month_is_the_utc_month_of_the_timestamp(published: datetime, month: str) -> None:
    assert usage_month(published) == month


def test_key_is_user_and_month() -> None:
    assert usage_key("u1b2c3d4-e5f6", "2026-03") == "u1b2c3d4-e5f6.2026-03"
