"""Tracing on in a benchmark: the worker exports every job's spans over OTLP/HTTP to a receiver in the bench process.

Every job is sampled (a job without trace context starts a trace, and `parentbased_always_on` keeps it) and
the batch span processor keeps its default schedule, as in production. The receiver only counts the spans.
"""

from __future__ import annotations

from testkit.otlp import OtlpReceiver

__all__ = ["OtlpReceiver", "traced_env"]


def traced_env(receiver: OtlpReceiver) -> dict[str, str]:
    """The standard variables that turn tracing on in a worker process, exporting to `receiver`."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "agent-worker-bench",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    }
