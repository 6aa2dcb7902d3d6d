"""Structured logs: JSON lines for machines, a readable console for people; configured once per process.

Per-job fields (runId, jobId, tier, model, attempt) are bound once per job with `bind_job` by the
consumer, and every line logged in that job's task carries them. Nothing logs an API key or a prompt:
log calls pass ids and codes only.

JSON lines take structlog's fast path: orjson renders bytes that go straight to the stream's binary
buffer, with no `str` round trip and no stdlib `json`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, BinaryIO, TextIO
from urllib.parse import ParseResult

import orjson
import structlog

__all__ = ["bind_job", "configure_logging", "shown_server", "without_user_info"]

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
            # Tracebacks as text in both formats, so that the next step sees them.
            structlog.processors.format_exc_info,
            _without_user_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )


# Up to the last `@` before the host: a password may hold an `@` of its own.
_USER_INFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s]*@")
# The fields that carry text from outside the worker's own code: exceptions and their reprs.
_FOREIGN_TEXT_FIELDS = ("exception", "error")


def without_user_info(text: str) -> str:
    """`text` with the user information of every URL in it removed (`nats://u:p@h:4222` -> `nats://h:4222`)."""
    return _USER_INFO.sub(r"\g<scheme>", text)


def shown_server(url: ParseResult) -> str:
    """`host:port` of a server URL: never its user information (`user:password@`, a token), contract section 11."""
    host = url.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    return f"{host}:{url.port}" if url.port else host


def _without_user_info(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A traceback or an error's repr may quote a server URL with its password (contract section 11).

    Only the fields that carry foreign text are read, and only when present: two dictionary lookups per line.
    """
    for key in _FOREIGN_TEXT_FIELDS:
        value = event_dict.get(key)
        if isinstance(value, str) and "@" in value:
            event_dict[key] = without_user_info(value)
    return event_dict


def _orjson_text(value: Any, **kwargs: Any) -> str:
    # `kwargs` carries the renderer's `default`, which turns what orjson cannot encode into its repr.
    return orjson.dumps(value, **kwargs).decode()
