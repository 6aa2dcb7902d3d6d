"""catalog/ is pure: it imports and works with the worker's dependencies unavailable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.nats

BLOCKED = ("nats", "anthropic", "pydantic", "worker", "httpx", "orjson", "structlog", "aiohttp")

PROGRAM = textwrap.dedent(
    f"""
    import sys
    from decimal import Decimal

    BLOCKED = {BLOCKED!r}

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked")
            return None

    sys.meta_path.insert(0, Refuse())
    from catalog import Usage, bill, default_catalog, gate

    catalog = default_catalog()
    print(gate(catalog, "m5", None).model.id)
    print(bill(Usage(812, 240), catalog.models["claude-sonnet-4-6"].multiplier).total)
    print(sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED))
    """
)


def test_catalog_needs_none_of_the_workers_dependencies() -> None:
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["claude-sonnet-4-6", "3156", "[]"]
