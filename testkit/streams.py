"""The worker's streams, created ahead of it: a backlog needs its stream before the worker starts, a cluster R3."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nats.errors
import nats.js.errors

from worker.jetstream.topology import stream_configs
from worker.settings import Settings

__all__ = ["create_streams"]


async def create_streams(js: Any, *, replicas: int = 1, within: float = 30.0) -> None:
    """The streams exactly as the worker defines them (default settings), with `replicas` copies each.

    Retried while a fresh cluster has no JetStream meta leader yet.
    """
    deadline = time.monotonic() + within
    for config in stream_configs(Settings.from_env({})):
        config.num_replicas = replicas
        while True:
            try:
                await js.add_stream(config)
                break
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)
