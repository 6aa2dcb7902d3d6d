"""Dead letters (docs/contract.md §7): the original body with four headers saying why and whence.

A body too big to store beside those headers within the server's `max_payload` is cut to the bytes that
fit, and `Maschina-Dlq-Truncated: <original length in bytes>` says so. Every header is bounded, so the
headers alone always leave room for a body (a `max_payload` of a few hundred bytes would be needed to fail).
"""

from __future__ import annotations

from nats.aio.client import Client

from worker.contract import (
    DLQ_DETAIL_HEADER,
    DLQ_ORIGINAL_SUBJECT_HEADER,
    DLQ_REASON_HEADER,
    DLQ_STREAM,
    DLQ_STREAM_SEQ_HEADER,
    DLQ_SUBJECT,
    DLQ_TRUNCATED_HEADER,
    MSG_ID_HEADER,
    DlqReason,
)
from worker.jetstream.inbox import Inbox
from worker.jetstream.publish import StreamPublisher

__all__ = ["DeadLetters"]

# The detail is one sentence; a job subject is one of the consumer's filter subjects. Bounds all the same:
# nothing taken from a job or a subject may grow a header past them.
_DETAIL_CHARS = 512
_SUBJECT_CHARS = 256


class DeadLetters:
    def __init__(self, nc: Client) -> None:
        self._publisher = StreamPublisher(nc, Inbox(nc))

    async def send(self, body: bytes, *, reason: DlqReason, detail: str, subject: str, stream_seq: int) -> None:
        """Store the job in the dead-letter stream; the caller then terminates or deletes the original."""
        subject = _one_line(subject, _SUBJECT_CHARS)
        headers = {
            DLQ_REASON_HEADER: reason.value,
            # Header values are one line; a detail quoting the body must not break the header block.
            DLQ_DETAIL_HEADER: _one_line(detail, _DETAIL_CHARS),
            DLQ_ORIGINAL_SUBJECT_HEADER: subject,
            DLQ_STREAM_SEQ_HEADER: str(stream_seq),
            # A retried publish whose first try did land is then not stored twice.
            MSG_ID_HEADER: f"{subject}:{stream_seq}",
        }
        if len(body) > self._publisher.room(stream=DLQ_STREAM, headers=headers):
            headers[DLQ_TRUNCATED_HEADER] = str(len(body))
            body = body[: max(0, self._publisher.room(stream=DLQ_STREAM, headers=headers))]
        await self._publisher.publish(DLQ_SUBJECT, body, stream=DLQ_STREAM, headers=headers)


def _one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]
