"""A real OTLP/HTTP trace receiver on loopback: `POST /v1/traces` with an `ExportTraceServiceRequest`.

What the worker exports is decoded with the official protobuf classes (opentelemetry-proto), exactly as a
collector would read it, and kept as `ExportedSpan`s the tests can query (tests/tracing, tests/examples); the
benchmark's tracing rows use it as a counting-only sink (`keep=False`):

    async with OtlpReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        ...
        await receiver.wait_for(lambda spans: len(receiver.trace(trace_id)) >= 2)
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from worker.embedded import free_port

__all__ = ["ExportedSpan", "OtlpReceiver", "SpanKind"]

SpanKind = Span.SpanKind


@dataclass(frozen=True, slots=True)
class ExportedSpan:
    """One span as the receiver decoded it; ids in lowercase hex, as `traceparent` writes them."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    status_code: int
    status_message: str
    resource: dict[str, Any]
    scope: str
    start_ns: int
    end_ns: int

    @property
    def failed(self) -> bool:
        return self.status_code == Status.STATUS_CODE_ERROR

    def strings(self) -> Iterator[str]:
        """Every text this span carries: name, attribute and event values, status message."""
        yield self.name
        yield self.status_message
        for value in _flatten(self.attributes):
            yield str(value)
        for name, attributes in self.events:
            yield name
            for value in _flatten(attributes):
                yield str(value)


@dataclass
class OtlpReceiver:
    """Collects every span exported to it; `requests` counts the export requests, `received` the spans.

    With `keep=False` it only counts them (a benchmark's sink: decoding each span into an `ExportedSpan`
    would take CPU from the process measured).
    """

    keep: bool = True
    spans: list[ExportedSpan] = field(default_factory=list)
    received: int = 0
    requests: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def endpoint(self) -> str:
        """What `OTEL_EXPORTER_OTLP_ENDPOINT` should be (the exporter appends `/v1/traces`)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_post("/v1/traces", self._export)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _export(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if request.content_type != "application/x-protobuf":
            return web.Response(status=415, text="only application/x-protobuf")
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.received += len(scope_spans.spans)
                if self.keep:
                    self.spans.extend(_decoded(span, resource, scope_spans.scope.name) for span in scope_spans.spans)
        self.requests += 1
        self._changed.set()
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    async def wait_for(
        self, predicate: Callable[[list[ExportedSpan]], bool], within: float = 15.0
    ) -> list[ExportedSpan]:
        """Every span received, once `predicate` holds for them (checked after each export)."""
        async with asyncio.timeout(within):
            while not predicate(self.spans):
                self._changed.clear()
                await self._changed.wait()
        return list(self.spans)

    def trace(self, trace_id: str) -> list[ExportedSpan]:
        return [span for span in self.spans if span.trace_id == trace_id]


def _decoded(span: Span, resource: dict[str, Any], scope: str) -> ExportedSpan:
    return ExportedSpan(
        name=span.name,
        kind=span.kind,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        attributes={kv.key: _value(kv.value) for kv in span.attributes},
        events=[(event.name, {kv.key: _value(kv.value) for kv in event.attributes}) for event in span.events],
        status_code=span.status.code,
        status_message=span.status.message,
        resource=resource,
        scope=scope,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
    )


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _flatten(values: Any) -> Iterator[Any]:
    if isinstance(values, dict):
        for item in values.values():
            yield from _flatten(item)
    elif isinstance(values, list):
        for item in values:
            yield from _flatten(item)
    else:
        yield values
