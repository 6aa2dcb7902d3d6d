"""`agent-worker run`: the long-running worker, configured entirely by environment variables."""

from __future__ import annotations

import argparse
import sys

import structlog

from catalog import CatalogError
from worker import tracing
from worker.eventloop import run_event_loop
from worker.logging import configure_logging
from worker.service import Worker
from worker.settings import Settings, SettingsError

__all__ = ["add_arguments", "run"]

EXIT_BAD_CONFIG = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = settings_help()


def settings_help() -> str:
    rows = Settings.describe()
    width = max(len(name) for name, _, _ in rows)
    lines = ["settings (environment variables, with their defaults):"]
    for name, default, description in rows:
        lines.append(f"  {name:<{width}}  {description}; default: {default or '(unset)'}")
    lines += [
        "",
        "traces (docs/contract.md §10): the standard OpenTelemetry variables. OTEL_EXPORTER_OTLP_ENDPOINT (or",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns them on, exporting OTLP over HTTP; unset, nothing is set up.",
        "Also OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*,",
        "OTEL_EXPORTER_OTLP_HEADERS/_TIMEOUT/_COMPRESSION, OTEL_SDK_DISABLED (docs/operations.md).",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"agent-worker: bad setting: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        worker = Worker(settings)
    except CatalogError as exc:
        print(f"agent-worker: bad catalog: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        # Traces are configured by the standard OTEL_* variables only (docs/contract.md §10).
        tracing.configure()
    except tracing.TracingError as exc:
        print(f"agent-worker: bad setting: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    configure_logging(settings.log_format)
    try:
        return run_event_loop(worker.run_until_signal())
    except Exception:
        structlog.get_logger(__name__).exception("worker_failed")
        return 1
    finally:
        tracing.shutdown()  # exports the spans still buffered
