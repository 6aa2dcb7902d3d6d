"""Loading a catalog from TOML (placeholder until issue 2's loader lands)."""

from __future__ import annotations

from pathlib import Path

from catalog.model import Catalog

__all__ = ["CatalogError", "default_catalog", "load_catalog", "parse_catalog"]


class CatalogError(ValueError):
    pass


def parse_catalog(text: str, source: str) -> Catalog:
    raise NotImplementedError


def load_catalog(path: Path) -> Catalog:
    raise NotImplementedError


def default_catalog() -> Catalog:
    raise NotImplementedError
