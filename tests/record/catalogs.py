"""Catalog files for the reprice tests: the default catalog with one thing changed."""

from __future__ import annotations

import re
from pathlib import Path

from catalog import load_catalog

__all__ = ["DEFAULT_TOML", "HAIKU", "OPUS", "SONNET", "changed_catalog"]

DEFAULT_TOML = (Path(__file__).parents[2] / "catalog" / "default.toml").read_text()
SONNET, HAIKU, OPUS = "claude-sonnet-4-6", "claude-haiku-4-5-20251001", "claude-opus-4-6"


def changed_catalog(path: Path, model: str, **fields: str) -> Path:
    """The default catalog with some fields of one model's block changed (and tier lines via `tier.NAME`)."""
    text = DEFAULT_TOML

    def edit_block(block: re.Match[str]) -> str:
        body = block.group(0)
        for name, value in fields.items():
            if not name.startswith("tier_"):
                body = re.sub(rf"(?m)^{name} = .*$", f'{name} = "{value}"', body)
        return body

    text = re.sub(rf'(?ms)^id = "{re.escape(model)}"\n.*?(?=^\[|\Z)', edit_block, text)
    for name, value in fields.items():
        if name.startswith("tier_"):
            tier = name.removeprefix("tier_")
            text = re.sub(rf'(?ms)(^\[tiers\.{tier}\]\n.*?^default_model = )"[^"]*"', rf'\g<1>"{value}"', text, count=1)
    path.write_text(text)
    load_catalog(path)  # a valid catalog, or the test is wrong
    return path
