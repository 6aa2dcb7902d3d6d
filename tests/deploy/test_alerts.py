"""deploy/k8s/prometheusrule.yaml: the alerts use series that exist and numbers that match the settings."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.manifests import k8s_object
from tests.deploy.promql import TARGET_LABELS, exported_series, referenced
from worker.settings import Settings

pytestmark = pytest.mark.unit

# Series the alerts take from outside the worker: prometheus-nats-exporter (-jsz=all) and kube-state-metrics.
EXTERNAL_SERIES = frozenset(
    {
        "jetstream_consumer_num_pending",
        "jetstream_consumer_num_ack_pending",
        "jetstream_stream_total_messages",
        "kube_pod_status_ready",
        "kube_pod_container_status_restarts_total",
    }
)


def rules() -> list[dict[str, Any]]:
    return [rule for group in k8s_object("PrometheusRule")["spec"]["groups"] for rule in group["rules"]]


def rule(name: str) -> dict[str, Any]:
    (found,) = [candidate for candidate in rules() if candidate["alert"] == name]
    return found


@pytest.mark.parametrize("alert", rules(), ids=lambda alert: alert["alert"])
def test_every_alert_uses_existing_series_and_labels(alert: dict[str, Any]) -> None:
    series = exported_series()
    names, labels = referenced(alert["expr"])
    ours = {name for name in names if name.startswith("agent_worker_")}
    assert names, f"{alert['alert']} watches no series"
    assert ours <= set(series), f"the worker exports no {sorted(ours - set(series))}"
    assert names - ours <= EXTERNAL_SERIES, f"unknown series {sorted(names - ours - EXTERNAL_SERIES)}"
    if names == ours:
        carried = set().union(*(series[name] for name in ours)) | TARGET_LABELS
        assert labels <= carried, f"no such label {sorted(labels - carried)} on {sorted(ours)}"
    assert alert["labels"]["severity"] in {"warning", "critical"}


def test_alert_numbers_match_the_deployment() -> None:
    data = k8s_object("ConfigMap", "agent-worker-config")["data"]
    settings = Settings.from_env(data)
    scaled = k8s_object("ScaledObject")["spec"]
    slots_full = rule("AgentWorkerSlotsFull")["expr"]
    assert f">= 0.9 * {settings.concurrency}" in slots_full
    assert f">= {scaled['maxReplicaCount']}" in slots_full
    assert f"/ {settings.max_ack_pending} " in rule("AgentWorkerAckPendingNearLimit")["expr"]
    for name in ("AgentWorkerNoResultsWhileJobsWait", "AgentWorkerConsumerLag", "AgentWorkerAckPendingNearLimit"):
        expr = rule(name)["expr"]
        assert f'stream_name="{settings.jobs_stream}"' in expr
        assert f'consumer_name="{settings.consumer}"' in expr


def test_the_alerts_of_the_runbook_exist() -> None:
    names = {alert["alert"] for alert in rules()}
    assert {
        "AgentWorkerDeadLetters",
        "AgentWorkerProviderErrorRatio",
        "AgentWorkerSlotsFull",
        "AgentWorkerConsumerLag",
        "AgentWorkerNoResultsWhileJobsWait",
        "AgentWorkerReadinessFlaps",
    } <= names
