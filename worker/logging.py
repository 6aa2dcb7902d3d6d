"""Structured logs: JSON lines for machines, a readable console for people; configured once per process.

Per-job fields (runId, jobId, tier, model, attempt) are bound with `structlog.contextvars` by the
consumer. Nothing logs an API key or a prompt: log calls pass ids and codes only.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

__all__ = ["configure_logging"]


def configure_logging(
    log_format: str | None = None, *, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """`log_format` is "json" or "console"; None picks JSON unless `stream` (default stdout) is a terminal."""
    out = sys.stdout if stream is None else stream
    as_json = log_format == "json" if log_format else not out.isatty()
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info if as_json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
