"""The model catalog: tiers, models, the gate and billing. Pure: no I/O beyond reading a catalog file."""

from catalog.billing import Bill, Usage, bill, multiplier_text
from catalog.gate import Allowed, Denied, DenyCode, gate
from catalog.loader import CatalogError, default_catalog, load_catalog, parse_catalog
from catalog.model import DEFAULT_OUTPUT_CAP, PROVIDERS, Catalog, ModelSpec, ProviderName, TierSpec

__all__ = [
    "DEFAULT_OUTPUT_CAP",
    "PROVIDERS",
    "Allowed",
    "Bill",
    "Catalog",
    "CatalogError",
    "Denied",
    "DenyCode",
    "ModelSpec",
    "ProviderName",
    "TierSpec",
    "Usage",
    "bill",
    "default_catalog",
    "gate",
    "load_catalog",
    "multiplier_text",
    "parse_catalog",
]
