"""The gate: may this tier run this model? (docs/contract.md §3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from catalog.model import Catalog, ModelSpec, TierSpec
from catalog.quote import quote

__all__ = ["Allowed", "Denied", "DenyCode", "gate"]

DenyCode = Literal["unknown_tier", "unknown_model", "model_not_allowed"]


@dataclass(frozen=True, slots=True)
class Allowed:
    tier: TierSpec
    model: ModelSpec


@dataclass(frozen=True, slots=True)
class Denied:
    code: DenyCode
    message: str


def gate(catalog: Catalog, tier: str, model: str | None) -> Allowed | Denied:
    """Decide in the contract's order: tier known, model resolved, model known, tier allowed.

    `model` is the job's requested model; `None` and `""` both mean the tier's default.
    Ids match exactly: no trimming, no case folding.
    """
    tier_spec = catalog.tiers.get(tier)
    if tier_spec is None:
        return Denied("unknown_tier", f"Unknown tier {quote(tier)}.")
    model_id = model or tier_spec.default_model
    model_spec = catalog.models.get(model_id)
    if model_spec is None:
        return Denied("unknown_model", f"Unknown model {quote(model_id)}.")
    if not catalog.allows(tier_spec, model_spec):
        return Denied(
            "model_not_allowed",
            f"Model {model_spec.display_name} requires the {model_spec.min_tier} plan or higher.",
        )
    return Allowed(tier_spec, model_spec)
