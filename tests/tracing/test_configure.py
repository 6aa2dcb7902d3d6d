"""Tracing is configured by the standard OTEL_* variables only, and costs nothing when no endpoint is set."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import orjson
import pytest

from worker import tracing

pytestmark = pytest.mark.unit

# What a worker process does at start-up, then what it holds: run in a fresh interpreter, so that modules
# and threads left by other tests in this one cannot hide anything.
_PROBE = textwrap.dedent(
    """
    import os, sys, threading, orjson
    import worker.service, worker.commands.run
    from worker import tracing
    from opentelemetry import trace
    configured = tracing.configure()
    print(orjson.dumps({
        "configured": configured,
        "enabled": tracing.enabled,
        "sdk_modules": sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))),
        "threads": sorted(t.name for t in threading.enumerate()),
        "global_provider": type(trace.get_tracer_provider()).__name__,
    }).decode())
    tracing.shutdown()
    """
)


def _probe(env: dict[str, str]) -> dict[str, Any]:
    clean = {"PATH": "/usr/bin:/bin", **env}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=clean, capture_output=True, timeout=60, check=True, text=True
    )
    answer: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_without_an_endpoint_no_sdk_no_span_processor_and_no_exporter_thread_exist() -> None:
    off = _probe({"OTEL_SERVICE_NAME": "agent-worker", "OTEL_TRACES_SAMPLER": "always_on"})
    assert off["configured"] is False
    assert off["enabled"] is False
    assert off["sdk_modules"] == []
    assert off["threads"] == ["MainThread"]
    assert off["global_provider"] == "ProxyTracerProvider"
    # The same probe with an endpoint does build them: the probe can see what it looks for.
    on = _probe({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces"})
    assert on["configured"] is True
    assert "opentelemetry.sdk.trace.export" in on["sdk_modules"]
    assert len(on["threads"]) > 1
    # Ours is not OpenTelemetry's global provider: libraries that trace through the global API stay silent.
    assert on["global_provider"] == "ProxyTracerProvider"


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
