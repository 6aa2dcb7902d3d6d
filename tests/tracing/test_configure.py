"""Tracing is configured by the standard OTEL_* variables only; off, the job path reads nothing of the message."""

from __future__ import annotations

from typing import Any

import pytest

from worker import tracing

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "  "},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"},
        # Only an endpoint turns tracing on; every other variable alone leaves it off.
        {"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_TRACES_EXPORTER": "zipkin"},
    ],
)
def test_tracing_stays_off(env: dict[str, str]) -> None:
    assert tracing.configure(env) is False
    assert tracing.enabled is False


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "OTEL_TRACES_EXPORTER"),
    ],
)
def test_an_export_this_worker_cannot_make_is_a_bad_setting_naming_its_variable(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(tracing.TracingError, match=f"^{named}:"):
        tracing.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", **env})
    assert tracing.enabled is False


class _UntouchableMessage:
    """A job message whose every attribute raises: the off path must not read any."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"read {name} with tracing off")


def test_off_the_job_span_is_a_shared_no_op_that_reads_nothing_of_the_message() -> None:
    assert tracing.enabled is False
    first = tracing.job_span(_UntouchableMessage())  # type: ignore[arg-type]
    second = tracing.job_span(_UntouchableMessage())  # type: ignore[arg-type]
    assert first is second
    with first:
        pass


async def test_the_anthropic_sdk_makes_no_spans_of_its_own() -> None:
    # Ours is the call span (worker/providers/retry.py); the SDK's own per API call would duplicate it.
    from worker.providers.anthropic import AnthropicProvider

    provider = AnthropicProvider(api_key="sk-test", base_url="http://127.0.0.1:9", concurrency=1)
    try:
        assert provider._client.open_telemetry["traces"]["enabled"] is False
        assert provider._client._tracer is None  # what the SDK tests before making a span
    finally:
        await provider.aclose()


def test_the_resource_is_the_sdks_own_and_hashed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The exporter hashes the resource of every span it encodes; the SDK's Resource serialises its attributes
    # to JSON for each hash (worker/tracing.py `_resource`).
    from opentelemetry.sdk import resources
    from opentelemetry.sdk.resources import Resource

    monkeypatch.setenv("OTEL_SERVICE_NAME", "hashed-once")
    resource = tracing._resource()
    plain = Resource(resource.attributes, resource.schema_url)
    assert isinstance(resource, Resource)
    assert resource.attributes["service.name"] == "hashed-once"
    assert resource == plain
    assert hash(resource) == hash(plain)

    def no_json(*args: object, **kwargs: object) -> str:
        raise AssertionError("the resource was serialised again to be hashed")

    monkeypatch.setattr(resources, "dumps", no_json)
    assert {resource: 1}[resource] == 1
