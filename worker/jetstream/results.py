"""The result store: each run's one record at `maschina.results.agent.execute.<runId>` (docs/contract.md §6).

A result is stored only if its subject holds none yet (`Nats-Expected-Last-Subject-Sequence: 0`), on
top of the contract's `Nats-Msg-Id: <runId>` de-duplication, so a second record is refused even after
the duplicate window. Whoever loses the race reads the winner's record back and uses that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from worker.contract import EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER, MSG_ID_HEADER, RESULTS_SUBJECT_PREFIX
from worker.jetstream.inbox import Inbox
from worker.jetstream.lastget import LastGets
from worker.jetstream.publish import StreamPublisher
from worker.result import RunResult

__all__ = ["ResultStore", "Stored", "result_subject"]

# JetStream API error: the subject's last sequence is not the one the publisher expected.
_WRONG_LAST_SEQUENCE = 10071


def result_subject(run_id: str) -> str:
    return RESULTS_SUBJECT_PREFIX + run_id


@dataclass(frozen=True, slots=True)
class Stored:
    """The run's record as the stream holds it; `fresh` when this call stored it."""

    body: bytes
    fresh: bool


class ResultStore:
    def __init__(self, nc: Client, *, stream: str, allow_direct: bool) -> None:
        self._js: JetStreamContext = nc.jetstream()
        self._stream = stream
        inbox = Inbox(nc)
        self._publisher = StreamPublisher(nc, inbox)
        # With direct gets, the lookups of a fetched batch share one request (`LastGets`).
        self._last_gets = LastGets(nc, inbox, stream) if allow_direct else None

    async def lookup(self, run_id: str) -> bytes | None:
        """The stored record of `run_id`, or None when there is none."""
        if self._last_gets is not None:
            return await self._last_gets.last(result_subject(run_id))
        try:
            message = await self._js.get_last_msg(self._stream, result_subject(run_id))
        except NotFoundError:
            return None
        return message.data or None

    async def store(self, result: RunResult, *, headers: Mapping[str, str] | None = None) -> Stored:
        """Store `result` with `headers` (a trace context) besides the store's own; see `Stored`."""
        body = result.to_json()
        headers = {
            **(headers or {}),
            MSG_ID_HEADER: result.run_id,
            EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER: "0",
        }
        try:
            duplicate = await self._publisher.publish(
                result_subject(result.run_id), body, stream=self._stream, headers=headers
            )
        except APIError as exc:
            if exc.err_code != _WRONG_LAST_SEQUENCE:
                raise
        else:
            if not duplicate:
                return Stored(body, fresh=True)
        existing = await self.lookup(result.run_id)
        # Only a record deleted by hand within the duplicate window gets here with None: ours is still the answer.
        return Stored(existing if existing is not None else body, fresh=False)
