"""deploy/grafana/agent-worker.json asks Prometheus only for series the worker really exports.

The exported names come from `worker.metrics.Metrics` itself: a panel naming a metric (or a label) that the
worker does not export fails here instead of showing an empty graph in production.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.promql import TARGET_LABELS, exported_series, referenced
from tests.deploy.support import DEPLOY

pytestmark = pytest.mark.unit

DASHBOARD = DEPLOY / "grafana" / "agent-worker.json"


def dashboard_expressions(node: Any = None) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel, rows included, and every query variable."""
    node = json.loads(DASHBOARD.read_text()) if node is None else node
    for panel in node.get("panels", []):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
        yield from dashboard_expressions(panel)
    for variable in node.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            yield f"variable {variable['name']}", variable["definition"]


def test_the_reader_finds_names_and_labels() -> None:
    names, labels = referenced(
        'histogram_quantile(0.95, sum by (le, provider) (rate(agent_worker_nope_bucket{pod=~"$pod"}[5m])))'
        " / on (provider) group_left sum(up)"
    )
    assert names == {"agent_worker_nope_bucket", "up"}
    assert labels == {"le", "provider", "pod"}


def test_the_dashboard_has_the_panels_operators_need() -> None:
    expressions = " ".join(expr for _, expr in dashboard_expressions())
    for needed in (
        "agent_worker_jobs_total",
        "agent_worker_jobs_in_flight",
        "agent_worker_provider_latency_seconds_bucket",
        "agent_worker_billed_tokens_total",
        "agent_worker_redeliveries_total",
        "agent_worker_dead_letters_total",
        "agent_worker_naks_total",
        "agent_worker_quota_refusals_total",
        "agent_worker_quota_cas_conflicts_total",
        "agent_worker_quota_reserve_seconds_bucket",
        "agent_worker_quota_settle_seconds_bucket",
    ):
        assert needed in expressions
    assert "histogram_quantile" in expressions


@pytest.mark.parametrize(("panel", "expr"), list(dashboard_expressions()))
def test_every_query_uses_exported_series_and_their_labels(panel: str, expr: str) -> None:
    series = exported_series()
    names, labels = referenced(expr)
    assert names, f"{panel}: no series in {expr}"
    unknown = names - set(series)
    assert not unknown, f"{panel}: the worker exports no {sorted(unknown)}"
    carried = set().union(*(series[name] for name in names)) | TARGET_LABELS
    assert labels <= carried, f"{panel}: no such label {sorted(labels - carried)} on {sorted(names)}"


def test_a_misnamed_metric_is_caught() -> None:
    series = exported_series()
    assert "agent_worker_jobs_total" in series
    assert "agent_worker_jobs" not in series  # counters are exported with _total only
    assert "agent_worker_provider_latency_seconds_bucket" in series
    assert series["agent_worker_provider_latency_seconds_bucket"] >= {"le", "provider", "model"}
