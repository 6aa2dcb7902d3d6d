"""Billing: raw provider tokens times the model's multiplier, in exact decimals (docs/contract.md §5)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Bill", "Usage", "bill", "multiplier_text"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the provider reported them; `input_tokens` is the uncached input alone."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @property
    def raw_input(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


@dataclass(frozen=True, slots=True)
class Bill:
    multiplier: Decimal
    input_tokens: int
    output_tokens: int

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def nothing(cls, multiplier: Decimal = Decimal(0)) -> Bill:
        return cls(multiplier, 0, 0)


def _ceil(count: int, multiplier: Decimal) -> int:
    # Integer arithmetic on the multiplier's exact ratio: no decimal context, so no precision to run out of.
    numerator, denominator = multiplier.as_integer_ratio()
    return -(-count * numerator // denominator)


def bill(usage: Usage, multiplier: Decimal) -> Bill:
    """Billed input and output, each rounded up on its own; the total is their sum."""
    return Bill(multiplier, _ceil(usage.raw_input, multiplier), _ceil(usage.output_tokens, multiplier))


def multiplier_text(multiplier: Decimal) -> str:
    """The multiplier as plain digits without trailing zeros: "3", "0.25", "0.0000001" (never "3.0" or "1E-7")."""
    # Trimmed by hand: Decimal.normalize() would round to the context's 28 digits.
    text = format(multiplier, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
