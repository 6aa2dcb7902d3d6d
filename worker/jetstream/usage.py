"""The usage bucket (docs/contract.md §9): users' monthly usage in a JetStream key-value bucket.

One key per user and month, `<userId>.<YYYY-MM>`, holding `{"billed": int, "reserved": {"<runId>": int}}`.
Every write is a compare-and-set on the key's revision (`kv.create` for a key that holds nothing,
`kv.update` with the revision read otherwise), so any number of replicas can change one key and none
overwrites another's change: the loser is told, reads again and reapplies (`worker.quotas`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from catalog.quota import MonthlyUsage, UsageValueError, key_shown
from worker.jetstream.store import TRANSIENT, through_outages
from worker.jetstream.topology import ApiError
from worker.settings import Settings

__all__ = ["BucketUsageStore", "UsageTooLargeError", "ensure_usage_bucket", "published_at", "usage_bucket_config"]

log = structlog.get_logger(__name__)

# Room for the subject ($KV.<bucket>.<key>) and the compare-and-set header, besides the value.
_WRITE_OVERHEAD = 1024


def usage_bucket_config(settings: Settings, *, replicas: int) -> KeyValueConfig:
    """History 1 (only the current value counts), no expiry (a month's usage stays readable), file storage."""
    return KeyValueConfig(
        bucket=settings.usage_bucket,
        description="agent-worker monthly usage: <userId>.<YYYY-MM> -> billed tokens and runs reserved",
        history=1,
        ttl=None,
        storage=StorageType.FILE,
        replicas=replicas,
        # Reads go to any replica of the stream with a direct get, not through the stream leader's API.
        direct=True,
    )


async def ensure_usage_bucket(js: JetStreamContext, settings: Settings) -> KeyValue:
    """The usage bucket, created when missing with the jobs stream's replication; an existing one is used as is."""
    jobs = await js.stream_info(settings.jobs_stream)
    config = usage_bucket_config(settings, replicas=jobs.config.num_replicas or 1)
    try:
        return await js.create_key_value(config)
    except BadRequestError as exc:
        if exc.err_code != ApiError.STREAM_NAME_IN_USE:
            raise
    # Created by someone else with other settings (ops, or an older worker): use it, and say how it differs.
    kv = await js.key_value(settings.usage_bucket)
    status = await kv.status()
    if status.history != 1 or status.ttl:
        log.warning(
            "existing_usage_bucket_differs",
            bucket=settings.usage_bucket,
            history=status.history,
            ttl_secs=status.ttl,
        )
    return kv


class UsageTooLargeError(ValueError):
    """A user's month would not fit in one message: too many of their runs hold a reservation at once."""


class BucketUsageStore:
    """`worker.quotas.UsageStore` on a JetStream key-value bucket.

    `max_payload` is the server's current limit (re-read on every write: it may change on reconnect).
    """

    def __init__(self, kv: KeyValue, bucket: str, *, max_payload: Callable[[], int] | None = None) -> None:
        self._kv = kv
        self._max_payload = max_payload
        self.label = f"JetStream key-value bucket {bucket}"

    async def read(self, key: str) -> tuple[MonthlyUsage, int]:
        try:
            entry = await through_outages(lambda: self._kv.get(key), what="usage read")
        except KeyNotFoundError:
            # Never written, or deleted by hand (`nats kv del`): nothing billed, nothing reserved.
            return MonthlyUsage(), 0
        try:
            usage = MonthlyUsage.from_json(entry.value or b"{}")
        except UsageValueError as exc:
            # Someone wrote it by hand: the runs of this user wait (retried, logged) until it is fixed.
            raise UsageValueError(f"the value of {key_shown(key)} in the usage bucket is unreadable: {exc}") from None
        return usage, entry.revision or 0

    async def write(self, key: str, usage: MonthlyUsage, revision: int) -> bool:
        value = usage.to_json()
        limit = self._max_payload() if self._max_payload is not None else None
        # The server counts the subject and headers too, and refusing an oversized publish closes the connection.
        if limit is not None and len(value) + _WRITE_OVERHEAD > limit:
            raise UsageTooLargeError(
                f"{len(usage.reserved):,} runs hold a reservation on {key_shown(key)}: {len(value):,} bytes, over "
                f"what one message may carry ({limit:,} bytes); the run is retried once some of them have settled"
            )
        try:
            if revision == 0:
                # create() also takes over a key whose last entry is a delete marker.
                await self._kv.create(key, value)
            else:
                await self._kv.update(key, value, last=revision)
        except KeyWrongLastSequenceError:
            return False
        except TRANSIENT as exc:
            # The write may or may not have been stored: reading the key again says which.
            log.warning("usage_write_unconfirmed", key=key_shown(key), error=repr(exc))
            return False
        return True


def published_at(message: Msg) -> datetime:
    """When the job message was first published: its JetStream timestamp, the same on every delivery.

    Read from the ack subject's nanoseconds as an integer (nats-py's `metadata.timestamp` goes through a
    float, which can round the last instant of a month into the next one).
    """
    tokens = (message.reply or "").split(".")
    # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>, or the
    # newer form with <domain>.<account hash> after ACK and a random token at the end.
    index = 7 if len(tokens) == 9 else 9 if len(tokens) >= 11 else None
    if index is not None and tokens[index].isdigit():
        nanos = int(tokens[index])
        return datetime.fromtimestamp(nanos // 1_000_000_000, UTC).replace(microsecond=nanos % 1_000_000_000 // 1000)
    return message.metadata.timestamp
