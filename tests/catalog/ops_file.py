"""A small valid ops catalog file, shared by the loader's and the CLI's tests, and a one-place edit of it."""

from __future__ import annotations

from typing import Final

__all__ = ["OPS_CATALOG", "edit"]

# Tests name the line numbers of this text in their expected faults: edit it only with them.
OPS_CATALOG: Final = """\
[tiers.free]
rank = 0
default_model = "ollama/small"

[tiers.pro]
rank = 1
default_model = "claude-pro"

[[models]]
id = "ollama/small"
display_name = "Small (local)"
provider = "ollama"
min_tier = "free"
multiplier = "0"

[[models]]
id = "claude-pro"
display_name = "Claude Pro"
provider = "anthropic"
min_tier = "pro"
multiplier = "2.5"
output_cap = 8192
"""


def edit(text: str, old: str, new: str) -> str:
    """`text` with its one occurrence of `old` replaced by `new` (fails when `old` is absent or repeated)."""
    assert text.count(old) == 1, f"{old!r} must occur once in the base catalog"
    return text.replace(old, new)
