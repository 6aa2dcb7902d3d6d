"""Dead letters (contract section 7): the original body, unchanged, with four headers saying why and whence."""

from __future__ import annotations

from nats.aio.client import Client
from nats.js import JetStreamContext

from worker.errors import DlqReason
from worker.jetstream.topology import DLQ_STREAM, DLQ_SUBJECT

__all__ = ["DeadLetters"]


class DeadLetters:
    def __init__(self, nc: Client) -> None:
        self._js: JetStreamContext = nc.jetstream()

    async def send(self, body: bytes, *, reason: DlqReason, detail: str, subject: str, stream_seq: int) -> None:
        """Store the job in the dead-letter stream; the caller then terminates or deletes the original."""
        headers = {
            "Maschina-Dlq-Reason": reason.value,
            # Header values are one line; a detail quoting the body must not break the header block.
            "Maschina-Dlq-Detail": " ".join(detail.split()),
            "Maschina-Original-Subject": subject,
            "Maschina-Stream-Seq": str(stream_seq),
            # A retried publish whose first try did land is then not stored twice.
            "Nats-Msg-Id": f"{subject}:{stream_seq}",
        }
        await self._js.publish(DLQ_SUBJECT, body, stream=DLQ_STREAM, headers=headers)
