"""Quota log lines quote at most 64 characters of a job's userId (docs/contract.md §6), though a usage key holds 128."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from catalog.quota import key_shown, usage_key
from catalog.quote import MAX_QUOTE_CHARS
from worker.metrics import Metrics
from worker.quotas import Charge, MemoryUsageStore, Quotas

pytestmark = pytest.mark.unit

MARCH = datetime(2026, 3, 8, 12, tzinfo=UTC)
# The longest userId quotas allow (a usage key's token: 128 characters), with no run of 65 alike characters.
LONG_USER = "".join("abcdefghijklmnopqrstuvwxyz0123456789"[i % 36] for i in range(128))


def _longest_quote(events: list[MutableMapping[str, Any]]) -> int:
    """The longest run of LONG_USER's characters that any logged value holds."""
    texts = [str(value) for event in events for value in event.values()]
    return max((n for n in range(1, len(LONG_USER) + 1) for text in texts if LONG_USER[:n] in text), default=0)


async def test_refused_and_settled_runs_log_their_key_with_the_user_id_cut() -> None:
    quotas = Quotas(MemoryUsageStore(), metrics=Metrics())
    with capture_logs(processors=[]) as events:
        held = await quotas.reserve(Charge(LONG_USER, "run-1", MARCH, "m5", 600, 1_000))
        refused = await quotas.reserve(Charge(LONG_USER, "run-2", MARCH, "m5", 600, 1_000))
        assert await quotas.settle(LONG_USER, MARCH, "run-1", 500)
    assert (held.refused, refused.refused) == (False, True)
    assert {"quota_exceeded", "quota_settled"} <= {event["event"] for event in events}
    assert 0 < _longest_quote(events) <= MAX_QUOTE_CHARS


def test_key_shown_keeps_the_month_and_a_short_user_whole() -> None:
    assert key_shown(usage_key("user-1", "2026-03")) == "user-1.2026-03"
    shown = key_shown(usage_key(LONG_USER, "2026-03"))
    assert shown.endswith(".2026-03")
    assert LONG_USER[:MAX_QUOTE_CHARS] not in shown
    assert LONG_USER[: MAX_QUOTE_CHARS - 1] in shown
