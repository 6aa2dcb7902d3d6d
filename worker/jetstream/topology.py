"""The NATS connection and the topology on it: streams, consumers (docs/contract.md §1).

`connect` opens the worker's connection from its settings (seed list, credentials, TLS; URLs logged without
their user information). `ensure_topology` creates whatever stream or consumer is missing, idempotently and
safely when many replicas start at once, never deletes or rewrites an existing one, and says at start-up what
an existing one lacks. `ApiError` and `ServerStatus` are the one table of the server's error codes and statuses that
the other jetstream modules act on.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

import structlog
from nats.aio.client import Client
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

from worker.contract import (
    DLQ_STREAM,
    DLQ_SUBJECT,
    JOBS_STREAM_SUBJECTS,
    RESULTS_STREAM_SUBJECTS,
    WORKER_INBOX_PREFIX,
)
from worker.logging import shown_server, without_user_info
from worker.metrics import Metrics
from worker.settings import Settings

__all__ = [
    "ApiError",
    "ServerStatus",
    "Topology",
    "advisory_consumer_config",
    "connect",
    "consumer_config",
    "ensure_topology",
    "max_deliveries_subject",
    "stream_configs",
    "tls_context",
]

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
        log.warning("nats_error", error=without_user_info(repr(exc)))

    async def closed() -> None:
        log.info("nats_closed")

    options: dict[str, Any] = {
        "servers": list(settings.nats_url),
        "name": name,
        # Request inboxes outside every allowed reply prefix: a job's replyTo can never reach them.
        "inbox_prefix": WORKER_INBOX_PREFIX,
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
    return None if url is None else shown_server(url)


# How long the jobs stream drops a re-publish with the same Nats-Msg-Id (the run id): the server's own default,
# stated so that an API's publish retry is known to be covered and an existing stream with less is reported.
# A re-publish after it is harmless: the worker answers it from the stored result.
_JOBS_DUPLICATE_WINDOW_SECS = 2 * 60


_DUPLICATE_WINDOW_SECS = 2 * 3600


_DLQ_MAX_AGE_SECS = 30 * 24 * 3600


# Handled advisories are acked and kept this long, for looking back at what ran out of deliveries.
_ADVISORIES_MAX_AGE_SECS = 7 * 24 * 3600


# One advisory takes a few stream calls; a replica that does not ack it within this long is presumed gone.
_ADVISORY_ACK_WAIT_SECS = 30.0


# A poison advisory (the handler keeps failing on it) is given up after this many tries, and logged.
_ADVISORY_MAX_DELIVER = 10


_Config = StreamConfig | ConsumerConfig


class ApiError(IntEnum):
    """The JetStream API error codes the worker acts on (nats-server's errors.json), in one table."""

    DELETE_FAILED = 10057
    """A message delete failed; "no message found" when it is already gone."""
    STREAM_NAME_IN_USE = 10058
    """A stream of that name exists with another configuration."""
    WRONG_LAST_SEQUENCE = 10071
    """The subject's last sequence is not the one the publisher expected."""
    CONSUMER_EXISTS = 10148
    """A consumer of that name exists with another configuration."""


class ServerStatus(StrEnum):
    """The `Status` header values of the server's answers the worker acts on (pull requests, batched reads)."""

    HEARTBEAT = "100"
    END_OF_BATCH = "204"
    NOT_FOUND = "404"
    """Nothing (more) to deliver, or no stored message matched."""
    REQUEST_TIMEOUT = "408"
    """A pull request expired."""
    NO_RESPONDERS = "503"


@dataclass(frozen=True, slots=True)
class Topology:
    """What the worker runs against: the consumers as they really are, and how results can be read back."""

    consumer: ConsumerConfig
    advisory_consumer: ConsumerConfig
    results_allow_direct: bool


def max_deliveries_subject(stream: str, consumer: str) -> str:
    """Where the server announces a message of `stream` that exhausted `consumer`'s max_deliver."""
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"


def stream_configs(settings: Settings) -> list[StreamConfig]:
    """The jobs, results and dead-letter streams as the contract describes them, and the advisories stream."""
    return [
        StreamConfig(
            name=settings.jobs_stream,
            subjects=[JOBS_STREAM_SUBJECTS],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=_JOBS_DUPLICATE_WINDOW_SECS,
        ),
        StreamConfig(
            name=settings.results_stream,
            subjects=[RESULTS_STREAM_SUBJECTS],
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
        # Advisories are core NATS messages the server publishes in the account; this stream stores them,
        # so one sent while no replica is connected waits for the next one instead of being lost.
        StreamConfig(
            name=settings.advisories_stream,
            subjects=[max_deliveries_subject(settings.jobs_stream, settings.consumer)],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=_ADVISORIES_MAX_AGE_SECS,
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


def advisory_consumer_config(settings: Settings) -> ConsumerConfig:
    """The durable pull consumer of the advisories stream every replica shares: `<WORKER_CONSUMER>-max-deliveries`."""
    name = f"{settings.consumer}-max-deliveries"
    return ConsumerConfig(
        name=name,
        durable_name=name,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=_ADVISORY_ACK_WAIT_SECS,
        max_deliver=_ADVISORY_MAX_DELIVER,
    )


async def ensure_topology(js: JetStreamContext, settings: Settings) -> Topology:
    infos = {info.config.name: info for info in [await _ensure_stream(js, c) for c in stream_configs(settings)]}
    results = infos[settings.results_stream]
    _warn_if_lacking(infos[settings.jobs_stream].config, results.config)
    consumer = await _ensure_consumer(js, settings.jobs_stream, consumer_config(settings))
    pending = consumer.config.max_ack_pending
    if pending is not None and 0 < pending < settings.concurrency:
        log.warning(
            "max_ack_pending_below_concurrency",
            max_ack_pending=pending,
            concurrency=settings.concurrency,
        )
    advisory_consumer = await _ensure_consumer(js, settings.advisories_stream, advisory_consumer_config(settings))
    return Topology(
        consumer=consumer.config,
        advisory_consumer=advisory_consumer.config,
        results_allow_direct=bool(results.config.allow_direct),
    )


async def _ensure_stream(js: JetStreamContext, wanted: StreamConfig) -> StreamInfo:
    assert wanted.name is not None
    try:
        info = await js.add_stream(wanted)
        log.debug("stream_ready", stream=wanted.name)
        return info
    except BadRequestError as exc:
        if exc.err_code != ApiError.STREAM_NAME_IN_USE:
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
            if exc.err_code != ApiError.CONSUMER_EXISTS:
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


def _warn_if_lacking(jobs: StreamConfig, results: StreamConfig) -> None:
    """Name the existing stream settings that the API and the worker rely on, when a stream lacks them."""
    jobs_window = jobs.duplicate_window or 0
    if jobs_window < _JOBS_DUPLICATE_WINDOW_SECS:
        log.warning(
            "jobs_duplicate_window_short",
            stream=jobs.name,
            duplicate_window=jobs_window,
            wanted=_JOBS_DUPLICATE_WINDOW_SECS,
            why="a job re-published with the same Nats-Msg-Id after this window is stored again",
        )
    results_window = results.duplicate_window or 0
    if results_window < _DUPLICATE_WINDOW_SECS:
        log.warning(
            "results_duplicate_window_short",
            stream=results.name,
            duplicate_window=results_window,
            wanted=_DUPLICATE_WINDOW_SECS,
        )
    if not results.allow_direct:
        log.warning(
            "results_allow_direct_off",
            stream=results.name,
            why="callers cannot read a run's result with a direct get, and the worker looks results up more slowly",
        )


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
