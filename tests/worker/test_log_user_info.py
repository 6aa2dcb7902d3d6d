"""No log line shows a server URL's user information (contract section 11), whatever an exception quotes.

nats-py's errors, an OSError or a traceback may carry a URL as the caller gave it; the log's processor
takes the user information out of the `exception` and `error` fields in both output formats.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
import structlog

from worker.logging import configure_logging, shown_server, without_user_info

pytestmark = pytest.mark.unit

URL = "nats://aw-user:p@ss-sekret-word@nats-0.internal:4222"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_without_user_info_keeps_scheme_host_and_port() -> None:
    assert without_user_info(f"connect to {URL} failed; tls://tok@[::1]:1 and nats://h:1/x@y") == (
        "connect to nats://nats-0.internal:4222 failed; tls://[::1]:1 and nats://h:1/x@y"
    )
    assert shown_server(urlparse(URL)) == "nats-0.internal:4222"
    assert shown_server(urlparse("nats://u:p@[::1]:4222")) == "[::1]:4222"


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_exceptions_and_errors_are_logged_without_user_info(log_format: str, restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging(log_format, stream=out)
    log = structlog.get_logger("test")
    try:
        raise ConnectionError(f"could not reach {URL}")
    except ConnectionError as exc:
        log.exception("worker_failed")
        log.warning("nats_error", error=repr(exc))
    text = out.getvalue()
    assert "worker_failed" in text
    assert "nats_error" in text
    assert text.count("nats://nats-0.internal:4222") >= 2
    assert "sekret" not in text
    assert "aw-user" not in text
