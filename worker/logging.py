"""Structured logs: JSON lines for machines, a readable console for people; configured once per process.

Per-job fields (runId, jobId, tier, model, attempt) are bound once per job with `bind_job` by the
consumer, and every line logged in that job's task carries them. Nothing logs an API key or a prompt:
log calls pass ids and codes only.

JSON lines take structlog's fast path: orjson renders bytes that go straight to the stream's binary
buffer, with no `str` round trip and no stdlib `json`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, BinaryIO, TextIO

import orjson
import structlog

__all__ = ["bind_job", "configure_logging"]

# One variable for all of a job's fields rather than structlog's one per field: a job binds them once,
# and every line then merges one mapping instead of scanning the whole context.
_job_fields: ContextVar[Mapping[str, Any]] = ContextVar("agent_worker_job_fields", default=MappingProxyType({}))


def bind_job(**fields: Any) -> None:
    """Add `fields` to every line logged from now on in the current task (each job runs in its own)."""
    _job_fields.set({**_job_fields.get(), **fields})


def _merge_job_fields(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in _job_fields.get().items():
        event_dict.setdefault(key, value)
    return event_dict


def configure_logging(
    log_format: str | None = None, *, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """`log_format` is "json" or "console"; None picks JSON unless `stream` (default stdout) is a terminal."""
    out = sys.stdout if stream is None else stream
    as_json = log_format == "json" if log_format else not out.isatty()
    binary: BinaryIO | None = getattr(out, "buffer", None) if as_json else None
    renderer: structlog.types.Processor
    logger_factory: Any
    if not as_json:
        renderer = structlog.dev.ConsoleRenderer()
        logger_factory = structlog.PrintLoggerFactory(out)
    elif binary is not None:
        # Anything written to the text layer before must come out first.
        out.flush()
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        logger_factory = structlog.BytesLoggerFactory(binary)
    else:  # a text stream with no binary buffer under it, such as io.StringIO
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_text)
        logger_factory = structlog.PrintLoggerFactory(out)
    structlog.configure(
        processors=[
            _merge_job_fields,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info if as_json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )


def _orjson_text(value: Any, **kwargs: Any) -> str:
    # `kwargs` carries the renderer's `default`, which turns what orjson cannot encode into its repr.
    return orjson.dumps(value, **kwargs).decode()
