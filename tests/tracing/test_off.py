"""Without an OTLP endpoint, a worker process sets nothing up for traces: no SDK, no span processor, no thread."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import orjson
import pytest

pytestmark = pytest.mark.nats  # one short child process per probe

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
