"""`agent-worker usage USER_ID [--month YYYY-MM] [--json]`: a user's month in the usage bucket (docs/contract.md §9).

Reads the key `<USER_ID>.<YYYY-MM>` of WORKER_USAGE_BUCKET with the worker's NATS settings, and prints what is
billed (settled runs), what is reserved (runs in flight: how many, how many tokens), the user's quota and what
remains. The quota is the tier's in the catalog (WORKER_CATALOG or built in); the bucket does not know a
user's tier, so `--tier` names it (without it, every tier's quota is shown). Reading changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import UTC, datetime

import nats.errors
from nats.js.errors import BucketNotFoundError

from catalog import Catalog, CatalogError, default_catalog, load_catalog
from catalog.quota import MONTH, USER_ID, MonthlyUsage, usage_key, usage_month
from worker.commands.catalog import quota_text
from worker.jetstream.topology import connect
from worker.jetstream.usage import BucketUsageStore
from worker.logging import configure_logging
from worker.metrics import Metrics
from worker.settings import Settings, SettingsError

__all__ = ["add_arguments", "render_json", "render_text", "run"]

EXIT_FAILED = 1
EXIT_USAGE = 2
# The connection retries unreachable servers forever, as a replica should; a command gives up.
_READ_TIMEOUT_SECS = 15.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1] if __doc__ else None
    parser.add_argument("user_id", metavar="USER_ID", help="the job's userId")
    parser.add_argument("--month", metavar="YYYY-MM", help="the UTC month (default: the current one)")
    parser.add_argument("--tier", metavar="TIER", help="the user's tier, for the quota and what remains")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    month = args.month or usage_month(datetime.now(UTC))
    if not MONTH.fullmatch(month):
        print(f"agent-worker usage: --month must be YYYY-MM, not {month[:16]!r}", file=sys.stderr)
        return EXIT_USAGE
    if not USER_ID.fullmatch(args.user_id):
        print("agent-worker usage: USER_ID must be 1 to 128 letters, digits, '_' and '-'", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = Settings.from_env()
        catalog = load_catalog(settings.catalog_file) if settings.catalog_file is not None else default_catalog()
    except (SettingsError, CatalogError) as exc:
        print(f"agent-worker usage: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.tier is not None and args.tier not in catalog.tiers:
        known = ", ".join(catalog.tiers)
        print(f"agent-worker usage: unknown tier {args.tier[:64]!r} (tiers: {known})", file=sys.stderr)
        return EXIT_USAGE
    # Errors only, on stderr: stdout is the answer, and closing the connection logs a disconnect warning.
    configure_logging("console", level=logging.ERROR, stream=sys.stderr)
    try:
        usage = asyncio.run(asyncio.wait_for(_read(settings, usage_key(args.user_id, month)), _READ_TIMEOUT_SECS))
    except BucketNotFoundError:
        print(f"agent-worker usage: no bucket {settings.usage_bucket} (quotas never turned on?)", file=sys.stderr)
        return EXIT_FAILED
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        # The error's type only: its text may carry a server URL with credentials.
        print(f"agent-worker usage: cannot read the usage from NATS: {type(exc).__name__}", file=sys.stderr)
        return EXIT_FAILED
    tiers = [args.tier] if args.tier is not None else [tier.name for tier in catalog.tiers_by_rank()]
    key = usage_key(args.user_id, month)
    print(render_json(key, usage, catalog, tiers) if args.json else render_text(key, usage, catalog, tiers))
    return 0


async def _read(settings: Settings, key: str) -> MonthlyUsage:
    nc = await connect(settings, name="agent-worker-usage", metrics=Metrics())
    try:
        kv = await nc.jetstream().key_value(settings.usage_bucket)
        usage, _ = await BucketUsageStore(kv, settings.usage_bucket).read(key)
        return usage
    finally:
        await nc.close()


def render_text(key: str, usage: MonthlyUsage, catalog: Catalog, tiers: list[str]) -> str:
    lines = [
        f"usage {key}",
        f"  billed     {usage.billed:>15,}  tokens (settled runs)",
        f"  reserved   {usage.reserved_tokens:>15,}  tokens held by {len(usage.reserved):,} run(s) in flight",
    ]
    for name in tiers:
        quota = catalog.tiers[name].monthly_quota
        remaining = usage.remaining(quota)
        shown = "unlimited" if remaining is None else f"{remaining:,}"
        lines.append(f"  {name:<10} quota {quota_text(quota):>15}  remaining {shown:>15}")
    return "\n".join(lines)


def render_json(key: str, usage: MonthlyUsage, catalog: Catalog, tiers: list[str]) -> str:
    document = {
        "key": key,
        "billed": usage.billed,
        "reserved": {"runs": len(usage.reserved), "tokens": usage.reserved_tokens, "byRun": dict(usage.reserved)},
        # null: unlimited.
        "tiers": {
            name: {
                "quota": catalog.tiers[name].monthly_quota,
                "remaining": usage.remaining(catalog.tiers[name].monthly_quota),
            }
            for name in tiers
        },
    }
    return json.dumps(document, indent=2)
