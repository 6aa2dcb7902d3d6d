"""Billing (docs/contract.md §5): raw tokens × multiplier, each component rounded up, exact decimals."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog import Bill, Usage, bill, multiplier_text

pytestmark = pytest.mark.unit

D = Decimal


def test_contract_example() -> None:
    billed = bill(Usage(input_tokens=812, output_tokens=240), D("3"))
    assert (billed.input_tokens, billed.output_tokens, billed.total) == (2436, 720, 3156)
    assert billed.multiplier == D("3")


@pytest.mark.parametrize(
    ("usage", "multiplier", "expected"),
    [
        (Usage(100, 40), "1", (100, 40)),
        (Usage(100, 40), "15", (1500, 600)),
        (Usage(10, 4), "0.25", (3, 1)),  # 2.5 → 3, 1.0 → 1
        (Usage(7, 3), "1.5", (11, 5)),  # 10.5 → 11, 4.5 → 5
        (Usage(123, 77), "0", (0, 0)),
        (Usage(0, 0), "15", (0, 0)),
    ],
)
def test_integer_fractional_and_zero_multipliers(usage: Usage, multiplier: str, expected: tuple[int, int]) -> None:
    billed = bill(usage, D(multiplier))
    assert (billed.input_tokens, billed.output_tokens) == expected
    assert billed.total == sum(expected)


def test_cache_tokens_count_as_raw_input() -> None:
    usage = Usage(input_tokens=100, output_tokens=10, cache_creation_input_tokens=50, cache_read_input_tokens=25)
    assert usage.raw_input == 175
    billed = bill(usage, D("3"))
    assert (billed.input_tokens, billed.output_tokens, billed.total) == (525, 30, 555)


@pytest.mark.parametrize(
    ("tokens", "multiplier", "expected"),
    [
        # Halves always go up: ceiling, not round-half-even (which would give 0, 2, 2).
        (1, "0.5", 1),
        (3, "0.5", 2),
        (5, "0.5", 3),
        (4, "0.5", 2),
        # Tiny fractions: any part of a token bills a whole token, an exact whole bills no more.
        (1, "0.0000001", 1),
        (10_000_000, "0.0000001", 1),
        (10_000_001, "0.0000001", 2),
        (1, "0.000000000000000001", 1),
        (0, "0.0000001", 0),
    ],
)
def test_rounding_at_halves_and_tiny_fractions(tokens: int, multiplier: str, expected: int) -> None:
    billed = bill(Usage(input_tokens=tokens, output_tokens=tokens), D(multiplier))
    assert billed.input_tokens == billed.output_tokens == expected


@pytest.mark.parametrize(
    ("tokens", "multiplier", "expected"),
    [
        # Binary floats get these wrong: 10 × 0.7 = 7.000000000000001 and 100 × 1.1 = 110.00000000000001.
        (10, "0.7", 7),
        (100, "1.1", 110),
        (3, "0.1", 1),
        (10, "0.3", 3),
    ],
)
def test_exact_where_floats_are_not(tokens: int, multiplier: str, expected: int) -> None:
    assert bill(Usage(output_tokens=tokens), D(multiplier)).output_tokens == expected


def test_very_large_counts_are_exact() -> None:
    huge = 10**18
    assert bill(Usage(huge, huge), D("15")).total == 3 * 10**19
    assert bill(Usage(huge + 1, 0), D("0.999999999999999999")).input_tokens == huge  # 10**18 - 10**-18, up
    assert bill(Usage(huge, 0), D("0.000000000000000001")).input_tokens == 1
    # Every cache component at 10**18 at once: raw input 3 × 10**18, multiplier with 27 significant digits.
    multiplier = D("123456789.123456789123456789")
    usage = Usage(huge, huge, huge, huge)
    billed = bill(usage, multiplier)
    # 10**18 × a multiplier of 18 decimal places is a whole number: its digits without the point.
    assert billed.output_tokens == 123456789123456789123456789
    assert billed.input_tokens == 370370367370370367370370367


def test_multiplier_with_trailing_zeros_bills_the_same() -> None:
    assert bill(Usage(7, 7), D("1.50")) == Bill(D("1.50"), 11, 11)
    assert bill(Usage(7, 7), D("1.5")).total == bill(Usage(7, 7), D("1.500000")).total


def test_nothing_bills_zero() -> None:
    assert Bill.nothing() == Bill(D(0), 0, 0)
    assert Bill.nothing().total == 0


@pytest.mark.parametrize(
    ("multiplier", "text"),
    [
        ("3", "3"),
        ("3.0", "3"),
        ("0", "0"),
        ("0.000", "0"),
        ("1E+2", "100"),
        ("0.0000001", "0.0000001"),
        ("1.50", "1.5"),
    ],
)
def test_multiplier_text(multiplier: str, text: str) -> None:
    assert multiplier_text(D(multiplier)) == text


def test_multiplier_text_keeps_every_digit_beyond_the_default_context() -> None:
    long = "123456789123.000000000000000000000000001"  # 40 significant digits, more than Decimal's default 28
    assert multiplier_text(D(long)) == long


counts = st.integers(min_value=0, max_value=10**18)
multipliers = st.decimals(min_value=0, max_value=D("999999999.999999999999999999"), places=18, allow_nan=False)


@given(counts, counts, counts, counts, multipliers)
def test_billed_is_the_ceiling_of_the_exact_product(
    uncached: int, output: int, created: int, read: int, multiplier: Decimal
) -> None:
    usage = Usage(uncached, output, created, read)
    billed = bill(usage, multiplier)
    exact = Fraction(multiplier)
    for raw, charged in ((uncached + created + read, billed.input_tokens), (output, billed.output_tokens)):
        assert raw * exact <= charged < raw * exact + 1
    assert billed.total == billed.input_tokens + billed.output_tokens
    assert billed.multiplier == multiplier


@given(counts, counts, counts, counts)
def test_a_zero_multiplier_bills_zero(uncached: int, output: int, created: int, read: int) -> None:
    billed = bill(Usage(uncached, output, created, read), D("0"))
    assert (billed.input_tokens, billed.output_tokens, billed.total) == (0, 0, 0)


@given(counts, multipliers, multipliers)
def test_a_larger_multiplier_never_bills_less(tokens: int, first: Decimal, second: Decimal) -> None:
    low, high = sorted((first, second))
    assert bill(Usage(output_tokens=tokens), low).output_tokens <= bill(Usage(output_tokens=tokens), high).output_tokens
