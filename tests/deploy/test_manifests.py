"""Every YAML under deploy/ parses; the Kubernetes objects validate offline against the Kubernetes schemas
(kubernetes-validate bundles them) or, for custom resources, against the hand-written schemas in schemas/;
and the manifests agree with the worker's settings and with each other."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from nats.aio.client import DEFAULT_DRAIN_TIMEOUT

from catalog import default_catalog
from catalog.loader import parse_catalog
from tests.deploy.manifests import (
    K8S,
    compose,
    compose_value,
    container,
    k8s_object,
    k8s_objects,
    yaml_documents,
    yaml_files,
)
from tests.deploy.support import DEPLOY, NATS_CONFIG
from worker import tracing
from worker.settings import Settings

pytestmark = pytest.mark.unit

# The oldest Kubernetes minor release the manifests promise to work on.
KUBERNETES_VERSION = "1.29"
SCHEMAS = Path(__file__).parent / "schemas"
# Custom resources are not in the Kubernetes schemas: each gets a schema file of our own.
CUSTOM_RESOURCE_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject-keda-v1alpha1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"): "kustomization-v1beta1.json",
}
# The worker's own settings and the standard OpenTelemetry variables that shape its traces (worker/tracing.py).
SETTING_NAMES = set(Settings.env_names()) | set(tracing.ENV_NAMES)


def validate(obj: dict[str, Any]) -> None:
    """Raise when `obj` does not match its schema: Kubernetes' own (strict: unknown fields are errors) or ours."""
    custom = CUSTOM_RESOURCE_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    if custom is None:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    else:
        schema = json.loads((SCHEMAS / custom).read_text())
        jsonschema.Draft202012Validator(schema).validate(obj)


def config_data() -> dict[str, str]:
    data: dict[str, str] = k8s_object("ConfigMap", "agent-worker-config")["data"]
    return data


def literal_env() -> dict[str, str]:
    return {item["name"]: item["value"] for item in container()["env"] if "value" in item}


@pytest.mark.parametrize("path", yaml_files(), ids=lambda path: str(path.relative_to(DEPLOY)))
def test_every_yaml_parses_into_mappings(path: Path) -> None:
    documents = yaml_documents(path)
    assert documents
    assert all(isinstance(document, dict) for document in documents)


@pytest.mark.parametrize(
    "obj", [obj for _, obj in k8s_objects()], ids=[f"{name}:{obj['kind']}" for name, obj in k8s_objects()]
)
def test_kubernetes_object_matches_its_schema(obj: dict[str, Any]) -> None:
    validate(obj)


DELETE = object()


@pytest.mark.parametrize(
    ("kind", "path", "value", "complaint"),
    [
        ("Deployment", ("spec", "template", "spec", "terminationGracePeriod"), 60, "was unexpected"),
        ("Deployment", ("spec", "template", "spec", "containers", 0, "image"), 7, "is not of type"),
        ("ConfigMap", ("data", "WORKER_CONCURRENCY"), 64, "is not of type"),
        ("PodDisruptionBudget", ("spec", "maxUnavailabe"), 1, "was unexpected"),
        ("ScaledObject", ("spec", "triggers", 0, "metadata", "lagThreshold"), 64, "is not of type"),
        ("ScaledObject", ("spec", "triggers", 0, "metadata", "consumer"), DELETE, "is a required property"),
        ("PodMonitor", ("spec", "selector"), DELETE, "is a required property"),
    ],
)
def test_the_schemas_catch_mistakes(kind: str, path: tuple[str | int, ...], value: object, complaint: str) -> None:
    obj = k8s_object(kind, "agent-worker-config" if kind == "ConfigMap" else None)
    *parents, last = path
    target: Any = obj
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    with pytest.raises(jsonschema.ValidationError, match=complaint):
        validate(obj)


def test_config_map_holds_only_worker_settings_that_parse() -> None:
    assert set(config_data()) <= SETTING_NAMES
    assert all(config_data().values()), "an empty value is not 'unset' to every reader"
    names = {item["name"] for item in container()["env"]}
    assert names <= SETTING_NAMES
    provider_keys = k8s_object("Secret", "agent-worker-provider-keys")["stringData"]
    assert set(provider_keys) <= SETTING_NAMES
    assert {"ANTHROPIC_API_KEY", "OPENAI_API_KEY"} <= set(provider_keys)
    settings = Settings.from_env(config_data() | literal_env())
    assert settings.catalog_file is not None
    assert settings.nats_nkey_seed is not None


def test_config_and_secrets_are_wired_into_the_pod() -> None:
    sources = container()["envFrom"]
    assert {"configMapRef": {"name": "agent-worker-config"}} in sources
    assert {"secretRef": {"name": "agent-worker-provider-keys"}} in sources
    volumes = {volume["name"]: volume for volume in k8s_object("Deployment")["spec"]["template"]["spec"]["volumes"]}
    mounts = {mount["name"]: mount["mountPath"] for mount in container()["volumeMounts"]}

    catalog_map = volumes["catalog"]["configMap"]["name"]
    (catalog_key,) = k8s_object("ConfigMap", catalog_map)["data"]
    assert literal_env()["WORKER_CATALOG"] == f"{mounts['catalog']}/{catalog_key}"
    seed_secret = volumes["nats-identity"]["secret"]["secretName"]
    (seed_key,) = k8s_object("Secret", seed_secret)["stringData"]
    assert literal_env()["NATS_NKEY_SEED"] == f"{mounts['nats-identity']}/{seed_key}"


def test_catalog_config_map_is_a_valid_catalog() -> None:
    text = k8s_object("ConfigMap", "agent-worker-catalog")["data"]["catalog.toml"]
    catalog = parse_catalog(text, "deploy/k8s/configmap.yaml")
    # Ops may price models differently, but the file offers every model the built-in catalog does.
    assert set(catalog.models) == set(default_catalog().models)
    # And the same monthly quotas: a tier left without one here would be unlimited once quotas are on.
    quotas = {name: tier.monthly_quota for name, tier in catalog.tiers.items()}
    assert quotas == {name: tier.monthly_quota for name, tier in default_catalog().tiers.items()}


def test_termination_grace_covers_the_shutdown_grace_and_the_drain() -> None:
    grace = Settings.from_env(config_data()).shutdown_grace_secs
    pod = k8s_object("Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > grace + DEFAULT_DRAIN_TIMEOUT
    stop = compose()["services"]["worker"]["stop_grace_period"]
    worker_env = compose()["services"]["worker"]["environment"]
    assert int(stop.removesuffix("s")) > float(worker_env["WORKER_SHUTDOWN_GRACE_SECS"]) + DEFAULT_DRAIN_TIMEOUT


def test_probes_and_scraping_use_the_worker_http_port() -> None:
    port = Settings.from_env(config_data()).http_port
    (http,) = container()["ports"]
    assert (http["name"], http["containerPort"]) == ("http", port)
    assert container()["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container()["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container()["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    annotations = k8s_object("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    (endpoint,) = k8s_object("PodMonitor")["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")


def test_pod_runs_as_non_root_on_a_read_only_root() -> None:
    pod = k8s_object("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    assert container()["securityContext"]["allowPrivilegeEscalation"] is False
    assert container()["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "replicas" not in k8s_object("Deployment")["spec"], "KEDA owns the replica count"


def test_selectors_pick_the_worker_pods() -> None:
    deployment = k8s_object("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"],
        k8s_object("PodDisruptionBudget")["spec"]["selector"],
        k8s_object("PodMonitor")["spec"]["selector"],
    ):
        assert selector["matchLabels"].items() <= pod_labels.items()
    assert k8s_object("ScaledObject")["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


def test_scaler_watches_the_worker_consumer_within_max_ack_pending() -> None:
    settings = Settings.from_env(config_data())
    scaled = k8s_object("ScaledObject")["spec"]
    (trigger,) = scaled["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "nats-jetstream"
    assert (meta["stream"], meta["consumer"]) == (settings.jobs_stream, settings.consumer)
    # One replica's worth of jobs per replica (see the comment in scaledobject.yaml).
    assert int(meta["lagThreshold"]) == settings.concurrency
    # max_ack_pending is consumer-wide: every replica's slots together must fit under it.
    assert scaled["maxReplicaCount"] * settings.concurrency <= settings.max_ack_pending
    assert scaled["minReplicaCount"] >= 2
    assert re.search(rf"^\s*{re.escape(meta['account'])}:\s*{{", NATS_CONFIG.read_text(), re.MULTILINE)


def test_kustomization_applies_everything_but_the_secret_template() -> None:
    resources = set(k8s_object("Kustomization")["resources"])
    manifests = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert resources == manifests - {"secret.yaml"}


def test_compose_runs_two_replicas_of_known_settings() -> None:
    services = compose()["services"]
    worker = services["worker"]
    assert worker["deploy"]["replicas"] == 2
    declared = worker["environment"]
    assert set(declared) <= SETTING_NAMES
    # Provider settings pass through from the shell (no value): set there, or absent in the container.
    passed_through = {name for name, value in declared.items() if value is None}
    assert {"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"} <= passed_through
    env = {name: compose_value(str(value)) for name, value in declared.items() if value is not None}
    # An empty value is not "unset" to every reader (the Anthropic SDK takes an empty base URL as given).
    assert all(env.values()), [name for name, value in env.items() if not value]
    Settings.from_env(env)
    (secret,) = worker["secrets"]
    assert env["NATS_NKEY_SEED"] == f"/run/secrets/{secret}"
    assert worker["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / worker["build"]["context"] / worker["build"]["dockerfile"]).is_file()


def test_compose_nats_has_jetstream_monitoring_and_the_least_privilege_config() -> None:
    nats = compose()["services"]["nats"]
    command = nats["command"]
    assert "-js" in command
    assert command[command.index("-m") + 1] == "8222"
    config_in_container = command[command.index("-c") + 1]
    mounted = {volume.split(":")[1]: volume.split(":")[0] for volume in nats["volumes"]}
    assert (DEPLOY / mounted[config_in_container]).resolve() == NATS_CONFIG
    # The config's $VARIABLES that it does not define itself come from the environment compose passes.
    config = re.sub(r'#.*|"[^"]*"', "", NATS_CONFIG.read_text())
    defined = set(re.findall(r"^([A-Z_]+):", config, re.MULTILINE))
    from_environment = set(re.findall(r"\$([A-Z_]+)", config)) - defined
    assert from_environment == set(nats["environment"])
