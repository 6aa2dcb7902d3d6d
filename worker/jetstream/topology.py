"""The streams and the shared durable consumer (contract section 1), created when missing and never rewritten.

Many replicas may start at once: creation is "create, and if someone else already did, read theirs".
An existing stream or consumer is used as it is; where its settings differ from ours a warning lists them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)
from nats.js.errors import BadRequestError, NotFoundError

from worker.settings import Settings

__all__ = [
    "DLQ_STREAM",
    "DLQ_SUBJECT",
    "RESULTS_SUBJECT_PREFIX",
    "Topology",
    "consumer_config",
    "ensure_topology",
    "stream_configs",
]

log = structlog.get_logger(__name__)

RESULTS_SUBJECT_PREFIX = "maschina.results.agent.execute."
DLQ_STREAM = "MASCHINA_DLQ"
DLQ_SUBJECT = "maschina.dlq.agent.execute"
_DUPLICATE_WINDOW_SECS = 2 * 3600
_DLQ_MAX_AGE_SECS = 30 * 24 * 3600

_Config = StreamConfig | ConsumerConfig

# JetStream API error codes (nats-server errors.json).
_STREAM_NAME_IN_USE = 10058
_CONSUMER_EXISTS = 10148


@dataclass(frozen=True, slots=True)
class Topology:
    """What the worker runs against: the consumer as it really is, and how results can be read back."""

    consumer: ConsumerConfig
    results_allow_direct: bool


def stream_configs(settings: Settings) -> list[StreamConfig]:
    """The jobs, results and dead-letter streams as the contract describes them."""
    return [
        StreamConfig(
            name=settings.jobs_stream,
            subjects=["maschina.jobs.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
        ),
        StreamConfig(
            name=settings.results_stream,
            subjects=["maschina.results.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=_DUPLICATE_WINDOW_SECS,
            # Lets a stored result be looked up with one direct get rather than a stream API call.
            allow_direct=True,
        ),
        StreamConfig(
            name=DLQ_STREAM,
            subjects=[DLQ_SUBJECT],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=_DLQ_MAX_AGE_SECS,
        ),
    ]


def consumer_config(settings: Settings) -> ConsumerConfig:
    """The durable pull consumer every replica shares."""
    return ConsumerConfig(
        name=settings.consumer,
        durable_name=settings.consumer,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_secs,
        max_deliver=settings.max_deliver,
        max_ack_pending=settings.max_ack_pending,
        filter_subjects=list(settings.subjects),
    )


async def ensure_topology(js: JetStreamContext, settings: Settings) -> Topology:
    infos = [await _ensure_stream(js, config) for config in stream_configs(settings)]
    results = next(info for info in infos if info.config.name == settings.results_stream)
    window = results.config.duplicate_window or 0
    if window < _DUPLICATE_WINDOW_SECS:
        log.warning("results_duplicate_window_short", stream=settings.results_stream, duplicate_window=window)
    consumer = await _ensure_consumer(js, settings.jobs_stream, consumer_config(settings))
    pending = consumer.config.max_ack_pending
    if pending is not None and 0 < pending < settings.concurrency:
        log.warning(
            "max_ack_pending_below_concurrency",
            max_ack_pending=pending,
            concurrency=settings.concurrency,
        )
    return Topology(consumer=consumer.config, results_allow_direct=bool(results.config.allow_direct))


async def _ensure_stream(js: JetStreamContext, wanted: StreamConfig) -> StreamInfo:
    assert wanted.name is not None
    try:
        info = await js.add_stream(wanted)
        log.debug("stream_ready", stream=wanted.name)
        return info
    except BadRequestError as exc:
        if exc.err_code != _STREAM_NAME_IN_USE:
            raise
    info = await js.stream_info(wanted.name)
    _warn_if_differs("stream", wanted.name, wanted, info.config)
    return info


async def _ensure_consumer(js: JetStreamContext, stream: str, wanted: ConsumerConfig) -> ConsumerInfo:
    assert wanted.durable_name is not None
    info: ConsumerInfo
    try:
        info = await js.consumer_info(stream, wanted.durable_name)
    except NotFoundError:
        try:
            created: ConsumerInfo = await _create_consumer(js, stream, wanted)
            return created
        except BadRequestError as exc:
            if exc.err_code != _CONSUMER_EXISTS:
                raise
            # Another replica created it a moment ago, with other settings.
            info = await js.consumer_info(stream, wanted.durable_name)
    _warn_if_differs("consumer", wanted.durable_name, wanted, info.config)
    return info


async def _create_consumer(js: JetStreamContext, stream: str, wanted: ConsumerConfig) -> ConsumerInfo:
    # nats-py's add_consumer sends no "action", which lets the server UPDATE an existing consumer.
    # "create" makes the server refuse unless the consumer is absent or identical.
    request = {"stream_name": stream, "config": wanted.as_dict(), "action": "create"}
    subject = f"$JS.API.CONSUMER.CREATE.{stream}.{wanted.durable_name}"
    response = await js._jsm._api_request(subject, json.dumps(request).encode(), timeout=js._timeout)
    info: ConsumerInfo = ConsumerInfo.from_response(response)
    return info


def _warn_if_differs(kind: str, name: str, wanted: _Config, actual: _Config) -> None:
    """Compare only what we set (fields that differ from the config type's defaults), in wire form."""
    defaults = type(wanted)().as_dict()
    theirs = actual.as_dict()
    differing = {
        key: {"ours": value, "theirs": theirs.get(key)}
        for key, value in wanted.as_dict().items()
        if key != "name" and not _same(value, defaults.get(key)) and not _same(value, theirs.get(key))
    }
    if differing:
        log.warning(f"existing_{kind}_differs", name=name, differences=differing)


def _same(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, list) and isinstance(theirs, list):
        return sorted(map(str, ours)) == sorted(map(str, theirs))
    return bool(ours == theirs)
