"""The catalog's value types: tiers, models and the catalog that holds them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

__all__ = ["DEFAULT_OUTPUT_CAP", "PROVIDERS", "Catalog", "ModelSpec", "ProviderName", "TierSpec"]

ProviderName = Literal["anthropic", "ollama", "openai"]
PROVIDERS: tuple[ProviderName, ...] = ("anthropic", "ollama", "openai")

#: Output tokens a model may be asked for when the catalog names no cap of its own.
DEFAULT_OUTPUT_CAP = 16_384


@dataclass(frozen=True, slots=True)
class TierSpec:
    name: str
    rank: int
    default_model: str
    monthly_quota: int | None = None
    """Billed tokens a user of this tier may spend in a calendar month (UTC); None is unlimited.

    docs/contract.md §9.
    """


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    display_name: str
    provider: ProviderName
    min_tier: str
    multiplier: Decimal
    output_cap: int = DEFAULT_OUTPUT_CAP

    @property
    def provider_model(self) -> str:
        """The name the provider knows the model by (`ollama/llama3.2` is `llama3.2` to Ollama)."""
        prefix = f"{self.provider}/"
        return self.id.removeprefix(prefix) if self.provider == "ollama" else self.id

    def output_tokens(self, requested: int) -> int:
        """`maxTokens` lowered to this model's output cap."""
        return min(requested, self.output_cap)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Tiers by name and models by id; built only by the loader, which checks every invariant.

    The loader hands over read-only mappings: one catalog is shared by every job of the process.
    """

    tiers: Mapping[str, TierSpec] = field(hash=False)
    models: Mapping[str, ModelSpec] = field(hash=False)
    source: str = "<default>"

    def tiers_by_rank(self) -> list[TierSpec]:
        return sorted(self.tiers.values(), key=lambda t: t.rank)

    def allows(self, tier: TierSpec, model: ModelSpec) -> bool:
        return tier.rank >= self.tiers[model.min_tier].rank
