"""The deploy files wire traces end to end: worker → OpenTelemetry Collector → Jaeger (compose), and the
Kubernetes pods take the OTLP endpoint from their config map (docs/contract.md §10)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.manifests import compose, compose_value, container, k8s_object, yaml_documents
from tests.deploy.support import DEPLOY
from worker import tracing

pytestmark = pytest.mark.unit


def _collector_config() -> dict[str, Any]:
    service = compose()["services"]["otel-collector"]
    (config_flag,) = [arg for arg in service["command"] if arg.startswith("--config=")]
    in_container = config_flag.removeprefix("--config=")
    mounted = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
    path = (DEPLOY / mounted[in_container]).resolve()
    assert path == DEPLOY / "otel" / "collector.yaml"
    (document,) = yaml_documents(path)
    config: dict[str, Any] = document
    return config


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def test_compose_workers_export_to_the_collector_over_otlp_http() -> None:
    services = compose()["services"]
    env = {name: compose_value(str(value)) for name, value in services["worker"]["environment"].items() if value}
    assert tracing.wanted(env)
    endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.scheme == "http"
    assert endpoint.hostname in services
    assert services[endpoint.hostname]["image"].startswith("otel/opentelemetry-collector")
    http_receiver = _collector_config()["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert _port(http_receiver) == endpoint.port


def test_the_collector_pipeline_forwards_traces_to_the_trace_ui() -> None:
    config = _collector_config()
    (pipeline,) = config["service"]["pipelines"].values()
    for section in ("receivers", "processors", "exporters"):
        assert set(pipeline[section]) <= set(config[section]), f"a {section[:-1]} of the pipeline is not defined"
    assert "otlp" in pipeline["receivers"]
    services = compose()["services"]
    (exporter,) = pipeline["exporters"]
    host = config["exporters"][exporter]["endpoint"].rsplit(":", 1)[0]
    assert host in services
    assert services[host]["image"].startswith("jaegertracing/")
    assert "127.0.0.1:16686:16686" in services[host]["ports"]  # the trace UI, on the host only


def test_kubernetes_pods_take_the_endpoint_from_the_config_map() -> None:
    config = k8s_object("ConfigMap", "agent-worker-config")["data"]
    assert tracing.wanted(config)
    assert urlsplit(config["OTEL_EXPORTER_OTLP_ENDPOINT"]).scheme in ("http", "https")
    # The pod's own env refers to WORKER_ID, which Kubernetes expands only when it is defined earlier in the list.
    names = [item["name"] for item in container()["env"]]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in names, "the endpoint lives in the config map only"
    assert names.index("WORKER_ID") < names.index("OTEL_RESOURCE_ATTRIBUTES")
