"""OpenTelemetry traces of each job (docs/contract.md §10): the API's trace continued to the model call and back.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set. Off, nothing of the
SDK is imported or built (no tracer provider, no span processor, no exporter thread) and every call site is
one test of `enabled`; a job's headers are not even looked at. On, `configure` builds the standard SDK from
the standard `OTEL_*` variables (service name, resource attributes, sampler, batch processor schedule, OTLP/HTTP
exporter endpoint, headers, timeout, compression) and:

- `job_span` continues the trace of a job message's `traceparent`/`tracestate` (W3C Trace Context) with one
  CONSUMER span per delivery; a malformed `traceparent` starts a new trace, and nothing here can fail a job;
- `provider_call` makes each model call, retries included, a CLIENT span named and attributed by the GenAI
  semantic conventions;
- `event` marks the short steps (result lookup, quota reserve and settle, store, reply copy) on the job span:
  events rather than spans, since a span costs several times an event and those steps are a round trip or less;
- `trace_headers` gives the job span's `traceparent` (and `tracestate`) for the result record and reply copy.

Off, `result_headers` still continues a job's trace on what is published for it (§10 asks it unconditionally):
the job's own valid `traceparent` with a new span id, the job span's, that is recorded nowhere, as an
unsampled span would be. It reads one header of a job that has headers, nothing more.

The tracer provider is this module's own, not OpenTelemetry's global one: a library that creates spans through
the global API (the anthropic SDK does, per API call) makes none that would duplicate ours. Attributes carry ids,
names, codes and counts only, never a prompt, a message, an answer or a key (docs/contract.md §11).
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from catalog import Usage
from worker.contract import TRACEPARENT_HEADER, TRACESTATE_HEADER
from worker.providers.base import Provider, ProviderError, ProviderReply, ProviderRequest
from worker.providers.redaction import scrubbed_reply

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js.api import RawStreamMsg

    from worker.job import RunRef
    from worker.result import RunResult

__all__ = [
    "ENV_NAMES",
    "TracingError",
    "configure",
    "count",
    "enabled",
    "event",
    "job_failed",
    "job_read",
    "job_result",
    "job_span",
    "provider_call",
    "result_headers",
    "shutdown",
    "trace_headers",
    "wanted",
]

enabled = False
"""True once `configure` has set up the SDK; every call site tests it before doing anything for traces."""

_tracer: Tracer = trace.NoOpTracer()
_provider: Any = None  # the SDK's TracerProvider, once configured
_propagator = TraceContextTextMapPropagator()
_NOTHING: AbstractContextManager[None] = nullcontext()

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")

ENV_NAMES = (
    *_ENDPOINT_VARIABLES,
    *_PROTOCOL_VARIABLES,
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
)
"""The standard variables that shape this worker's traces (the SDK reads them; deploy files may set them)."""
_SCOPE = "agent-worker"
_QUIET_LOGGERS = ("opentelemetry.trace.span", "opentelemetry.trace.propagation.tracecontext")
_INT64_LIMIT = 2**63
_DEFAULT_SERVICE_NAME = "agent-worker"


class TracingError(ValueError):
    """An `OTEL_*` variable asks for something this worker does not do; the text names the variable."""


def configure(env: Mapping[str, str] | None = None) -> bool:
    """Set up the SDK when `env` (default: the process environment) names an OTLP endpoint; True when it did.

    The SDK reads the `OTEL_*` variables from the process environment itself, so `env` only decides whether
    tracing is on; tests and the benchmark set the variables in the environment.
    """
    global enabled, _tracer, _provider
    env = os.environ if env is None else env
    if enabled or not wanted(env):
        return enabled
    # Imported here so that a worker without tracing never loads the SDK or the exporter.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # The API warns through the standard logging (unstructured, on standard error) about malformed trace
    # context, quoting it: that comes from job headers, which the contract says are ignored when malformed, and
    # no header may reach a log. The SDK's own warnings (an export that failed, a full queue) stay.
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    provider = TracerProvider(resource=_resource())  # the sampler comes from OTEL_TRACES_SAMPLER(_ARG)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # OTEL_BSP_* and OTEL_EXPORTER_OTLP_*
    _provider = provider
    _tracer = provider.get_tracer(_SCOPE)
    enabled = True
    return True


def _resource() -> Any:
    """The SDK's resource from `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (service name `agent-worker` by
    default), as a `Resource` that computes its hash once.

    The OTLP exporter groups every span it encodes by resource, and `Resource.__hash__` serialises all the
    resource's attributes to JSON on each call: about 4 µs per span, some 15% of encoding a job's span. A
    resource never changes once built, so its hash need not either; equality and what is exported are the
    `Resource`'s own.
    """
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    class _HashedOnce(Resource):
        def __init__(self, resource: Resource) -> None:
            super().__init__(resource.attributes, resource.schema_url)
            self._hash = super().__hash__()

        def __hash__(self) -> int:
            return self._hash

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: _DEFAULT_SERVICE_NAME}))
    return _HashedOnce(resource)


def wanted(env: Mapping[str, str]) -> bool:
    """Whether `env` turns traces on: an OTLP endpoint is set and the SDK is not disabled.

    Raises `TracingError` when it asks for an export this worker does not ship (gRPC, JSON, console, ...).
    """
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    if not any(env.get(name, "").strip() for name in _ENDPOINT_VARIABLES):
        return False
    if exporter not in ("", "otlp"):
        raise TracingError(f"OTEL_TRACES_EXPORTER: only otlp (or none) is supported, not {exporter[:64]!r}")
    for name in _PROTOCOL_VARIABLES:
        protocol = env.get(name, "").strip().lower()
        if protocol not in ("", "http/protobuf"):
            raise TracingError(f"{name}: only http/protobuf is supported, not {protocol[:64]!r}")
    return True


def shutdown() -> None:
    """Export what is still buffered and stop the exporter thread (at the end of `agent-worker run`)."""
    global enabled, _tracer, _provider
    provider, _provider = _provider, None
    enabled = False
    _tracer = trace.NoOpTracer()
    if provider is not None:
        provider.shutdown()


# --- the job span -------------------------------------------------------------------------------------------


def job_span(
    message: Msg | RawStreamMsg, *, seq: int | None = None, deliveries: int | None = None
) -> AbstractContextManager[None]:
    """A context manager around one delivery of a job message: the job's CONSUMER span, current inside it.

    The stream sequence and delivery count come from `seq` and `deliveries` when given, else from the
    message's JetStream metadata. Off, a shared no-op context: nothing of the message is read.
    """
    if not enabled:
        return _NOTHING
    if seq is None or deliveries is None:
        try:
            metadata = message.metadata  # type: ignore[union-attr]
            seq, deliveries = metadata.sequence.stream, int(metadata.num_delivered or 1)
        except Exception:
            pass  # not a JetStream delivery: the span goes without them
    return _JobSpan(message, seq, deliveries)


class _JobSpan:
    """The job span, current from `__enter__` to `__exit__` (a class: cheaper than a generator-based one).

    Current in this module's own context variable rather than OpenTelemetry's context: nothing but this module
    reads it (the tracer provider is not the global one), and a variable of our own costs a set and a reset per
    job where attaching a span costs a new `Context` and the API's checks. What the job learns on the way (run,
    tier, status, error) is gathered in `attributes` and set on the span in one call when it ends: the SDK
    cleans and locks on every call.
    """

    __slots__ = ("_token", "attributes", "context", "span")

    def __init__(self, message: Msg | RawStreamMsg, seq: int | None, deliveries: int | None) -> None:
        subject = message.subject or ""
        # Few attributes: each costs about a microsecond to set and two more to export, on every job. The
        # constant ones of the messaging conventions (operation, consumer group) are left out. These are known
        # at the start, so they are given to the sampler too (as the conventions ask).
        attributes: dict[str, AttributeValue] = {"messaging.system": "nats", "messaging.destination.name": subject}
        if seq is not None:
            # JetStream's own identity of the message: its sequence in the stream (the same on every delivery).
            attributes["messaging.message.id"] = str(seq)
        if deliveries is not None:
            attributes["messaging.nats.message.delivery_count"] = deliveries
        self.span = _tracer.start_span(
            f"process {subject}", context=_parent(message.headers), kind=SpanKind.CONSUMER, attributes=attributes
        )
        self.context = trace.set_span_in_context(self.span)
        """The parent of the job's call spans and the source of its `traceparent`."""
        self.attributes: dict[str, AttributeValue] = {}
        self._token: Token[_JobSpan | None] | None = None

    def __enter__(self) -> None:
        self._token = _current.set(self)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            _current.reset(self._token)
        if exc_type is not None:
            # The type only: an exception's text may quote anything, a job's prompt included.
            self.fail(exc_type.__name__)
        if self.attributes:
            self.span.set_attributes(self.attributes)
        self.span.end()

    def fail(self, code: str) -> None:
        self.attributes["error.type"] = self.attributes["maschina.error_code"] = code
        self.span.set_status(Status(StatusCode.ERROR, code))


_current: ContextVar[_JobSpan | None] = ContextVar("agent_worker_job_span", default=None)
"""The job span of the delivery being handled (set by `_JobSpan.__enter__`); None outside one."""


def _parent(headers: Mapping[str, str] | None) -> otel_context.Context | None:
    """The context of the job's `traceparent`/`tracestate`; None (a new trace) when absent or malformed."""
    if not headers or TRACEPARENT_HEADER not in headers:
        return None
    try:
        carrier = {TRACEPARENT_HEADER: headers[TRACEPARENT_HEADER]}
        if TRACESTATE_HEADER in headers:
            carrier[TRACESTATE_HEADER] = headers[TRACESTATE_HEADER]
        return _propagator.extract(carrier)
    except Exception:
        return None  # a header this odd is ignored like a malformed one (docs/contract.md §10)


def job_read(ref: RunRef) -> None:
    """The door has read the job: its run and tier go on the job span (call only when `enabled`)."""
    job = _current.get()
    if job is not None:
        job.attributes["maschina.run_id"] = ref.run_id
        if ref.tier is not None:
            job.attributes["maschina.tier"] = ref.tier


def job_result(result: RunResult) -> None:
    """The run's result as stored: status, billed tokens and error code on the job span."""
    job = _current.get()
    if job is not None:
        job.attributes["maschina.status"] = result.status
        job.attributes["maschina.billed_tokens"] = count(result.billing.billed_tokens)
        if result.error is not None:
            job.fail(result.error.code.value)


def job_failed(status: str, code: str) -> None:
    """A delivery that ends without a result of its own: handed back (`retry_later`) or `dead_lettered`."""
    job = _current.get()
    if job is not None:
        job.attributes["maschina.status"] = status
        job.fail(code)


def event(name: str, attributes: Mapping[str, AttributeValue] | None = None) -> None:
    """A short step of the job (`result.lookup`, `quota.reserved`, `result.stored`, `reply.sent`) on its span."""
    job = _current.get()
    if job is not None:
        job.span.add_event(name, attributes)


def trace_headers() -> dict[str, str]:
    """The job span's `traceparent`, and `tracestate` when it has one: headers for what it publishes."""
    headers: dict[str, str] = {}
    job = _current.get()
    if job is not None:
        _propagator.inject(headers, job.context)
    return headers


def result_headers(job_headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """The trace headers of a job's result record and reply copy: the job span's `traceparent` (§10).

    On, the span's own (`trace_headers`). Off, the job's valid `traceparent` continued by a job span of a new id
    that is exported nowhere; None when the job carried none, or one that is malformed (a new trace: nothing).
    """
    if enabled:
        return trace_headers()
    if not job_headers:
        return None
    traceparent = job_headers.get(TRACEPARENT_HEADER)
    if traceparent is None:
        return None
    match = _TRACEPARENT.fullmatch(traceparent)
    if match is None or match["version"] == "ff" or match["trace"] == _ZERO_TRACE or match["span"] == _ZERO_SPAN:
        return None
    span_id = 0
    while not span_id:  # an all-zero id is invalid; the chance is 2^-64, the loop costs nothing
        span_id = random.getrandbits(64)
    return {TRACEPARENT_HEADER: f"00-{match['trace']}-{span_id:016x}-{match['flags']}"}


# W3C Trace Context, lower-case hex only; a later version's extra fields are not read (a new trace).
_TRACEPARENT = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<span>[0-9a-f]{16})-(?P<flags>[0-9a-f]{2})"
)
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


def _fail(span: Span, code: str) -> None:
    span.set_attributes({"error.type": code, "maschina.error_code": code})
    span.set_status(Status(StatusCode.ERROR, code))


# --- the provider call span ---------------------------------------------------------------------------------


async def provider_call(provider: Provider, request: ProviderRequest) -> ProviderReply:
    """`provider.complete(request)` inside a CLIENT span `chat <model>` (GenAI semantic conventions).

    A child of the job span, but not made current: nothing inside the call makes spans of ours, and the
    providers' SDKs make none of theirs (the tracer provider is not the global one; the anthropic SDK's own
    spans are off), so attaching it would only cost a `Context` and two context switches per call.
    """
    job = _current.get()
    span = _tracer.start_span(
        f"chat {request.model}",
        context=None if job is None else job.context,
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider.name,
            "gen_ai.request.model": request.model,
        },
    )
    try:
        reply = await provider.complete(request)
    except ProviderError as exc:
        if exc.usage is not None:
            span.set_attributes(_usage(exc.usage))
        _fail(span, exc.code.value)
        raise
    except BaseException as exc:
        _fail(span, type(exc).__name__)
        raise
    else:
        # Scrubbed before its model name goes on the span; the caller gets the same scrubbed reply.
        reply = scrubbed_reply(reply, request)
        attributes = _usage(reply.usage)
        if reply.model is not None:
            attributes["gen_ai.response.model"] = reply.model
        span.set_attributes(attributes)
        return reply
    finally:
        span.end()


def _usage(usage: Usage) -> dict[str, AttributeValue]:
    cache_read = usage.cache_read_input_tokens
    cache_creation = usage.cache_creation_input_tokens
    return {
        # GenAI conventions: the input count includes the cached tokens, read or written.
        "gen_ai.usage.input_tokens": count(usage.input_tokens + cache_read + cache_creation),
        "gen_ai.usage.output_tokens": count(usage.output_tokens),
        "gen_ai.usage.cache_read.input_tokens": count(cache_read),
        "gen_ai.usage.cache_creation.input_tokens": count(cache_creation),
    }


def count(value: int) -> int | str:
    """A token count as an attribute: OTLP integers are 64-bit, so a larger count (exact billing allows any
    size) is written as its decimal text rather than making the exporter drop the whole batch."""
    return value if value < _INT64_LIMIT else str(value)
