"""`agent-worker catalog`: the tiers, the models and which tier may use what; with `--file`, check an ops file."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from catalog import Catalog, CatalogError, default_catalog, load_catalog, multiplier_text

__all__ = ["add_arguments", "quota_text", "render_json", "render_text", "run"]

_ALLOWED, _DEFAULT, _REFUSED = "yes", "yes*", "-"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file",
        type=Path,
        metavar="PATH",
        help="check this catalog TOML file and print it (exit 2 naming every fault when it is bad); "
        'default: the built-in catalog. To check what the worker will load: --file "$WORKER_CATALOG"',
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def run(args: argparse.Namespace) -> int:
    try:
        catalog = default_catalog() if args.file is None else load_catalog(args.file)
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(render_json(catalog) if args.json else render_text(catalog))
    return 0


def render_text(catalog: Catalog) -> str:
    tiers = catalog.tiers_by_rank()
    models = list(catalog.models.values())
    tier_rows = [[tier.name, str(tier.rank), tier.default_model, quota_text(tier.monthly_quota)] for tier in tiers]
    model_rows = [
        [
            model.id,
            model.display_name,
            model.provider,
            model.min_tier,
            multiplier_text(model.multiplier),
            str(model.output_cap),
        ]
        for model in models
    ]
    matrix_rows = [
        [model.id]
        + [
            (_DEFAULT if tier.default_model == model.id else _ALLOWED) if catalog.allows(tier, model) else _REFUSED
            for tier in tiers
        ]
        for model in models
    ]
    sections = [
        f"Catalog {catalog.source}: {len(tiers)} tiers, {len(models)} models",
        "Tiers, lowest first (monthly quota: billed tokens per user and month, enforced with WORKER_QUOTAS=on)\n"
        + _table(["tier", "rank", "default model", "monthly quota"], tier_rows, numeric={1, 3}),
        "Models (billed tokens = ceil(raw tokens * multiplier))\n"
        + _table(
            ["model", "display name", "provider", "min tier", "multiplier", "output cap"], model_rows, numeric={4, 5}
        ),
        f"Who may use what ({_ALLOWED} allowed, {_DEFAULT} the tier's default, {_REFUSED} model_not_allowed)\n"
        + _table(["model \\ tier", *(tier.name for tier in tiers)], matrix_rows, numeric=set()),
    ]
    return "\n\n".join(sections)


def render_json(catalog: Catalog) -> str:
    tiers = catalog.tiers_by_rank()
    document = {
        "source": catalog.source,
        "tiers": [
            {
                "name": tier.name,
                "rank": tier.rank,
                "defaultModel": tier.default_model,
                # null: unlimited.
                "monthlyQuota": tier.monthly_quota,
            }
            for tier in tiers
        ],
        "models": [
            {
                "id": model.id,
                "displayName": model.display_name,
                "provider": model.provider,
                "minTier": model.min_tier,
                # A string, as in results: the multiplier is an exact decimal.
                "multiplier": multiplier_text(model.multiplier),
                "outputCap": model.output_cap,
            }
            for model in catalog.models.values()
        ],
        "allowed": {
            tier.name: [model.id for model in catalog.models.values() if catalog.allows(tier, model)] for tier in tiers
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def quota_text(quota: int | None) -> str:
    """A monthly quota as people read it: "500,000", or "unlimited"."""
    return "unlimited" if quota is None else f"{quota:,}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, numeric: set[int]) -> str:
    """A plain-text table indented two spaces; `numeric` columns are right-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        aligned = (
            cell.rjust(width) if index in numeric else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        return ("  " + "  ".join(aligned)).rstrip()

    rule = "  " + "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])
