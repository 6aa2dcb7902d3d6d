"""The NATS connection: options from `Settings`, reconnect forever, every disconnect logged and counted."""

from __future__ import annotations

import ssl
from typing import Any

import structlog
from nats.aio.client import Client

from worker.metrics import Metrics
from worker.settings import Settings

__all__ = ["connect", "tls_context"]

log = structlog.get_logger(__name__)

# Between rounds over the seed list; nats-py cycles through the servers itself, forever.
RECONNECT_WAIT_SECS = 1
CONNECT_TIMEOUT_SECS = 5


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """A client TLS context when a CA or client certificate is given; None leaves TLS to the URL's scheme."""
    if settings.nats_tls_ca is None and settings.nats_tls_cert is None:
        return None
    cafile = str(settings.nats_tls_ca) if settings.nats_tls_ca is not None else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    if settings.nats_tls_cert is not None:
        keyfile = str(settings.nats_tls_key) if settings.nats_tls_key is not None else None
        context.load_cert_chain(str(settings.nats_tls_cert), keyfile)
    return context


async def connect(settings: Settings, *, name: str, metrics: Metrics) -> Client:
    """Connect to the first reachable server of the seed list; afterwards reconnect forever, logging each change."""
    client = Client()

    async def disconnected() -> None:
        metrics.nats_disconnects.inc()
        log.warning("nats_disconnected")

    async def reconnected() -> None:
        log.info("nats_reconnected", server=_server(client))

    async def error(exc: Exception) -> None:
        log.warning("nats_error", error=repr(exc))

    async def closed() -> None:
        log.info("nats_closed")

    options: dict[str, Any] = {
        "servers": list(settings.nats_url),
        "name": name,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": RECONNECT_WAIT_SECS,
        "connect_timeout": CONNECT_TIMEOUT_SECS,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
        "error_cb": error,
        "closed_cb": closed,
    }
    if settings.nats_creds is not None:
        options["user_credentials"] = str(settings.nats_creds)
    if settings.nats_nkey_seed is not None:
        options["nkeys_seed"] = str(settings.nats_nkey_seed)
    context = tls_context(settings)
    if context is not None:
        options["tls"] = context
    await client.connect(**options)
    log.info("nats_connected", server=_server(client))
    return client


def _server(client: Client) -> str | None:
    url = client.connected_url
    return None if url is None else str(url.netloc)
