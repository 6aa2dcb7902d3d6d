"""Recorded job messages: one JSON object per line, written by `agent-worker record` and read by `replay`.

    {"format": "agent-worker.recorded-job.v1", "subject": "maschina.jobs.agent.agent.execute",
     "receivedAt": "2026-12-05T10:00:00.123Z", "headers": {"Maschina-Signature": "sha256=…"}, "body": "{…}"}

`body` is the message body as text when it is valid UTF-8 (so a recording reads like the jobs it holds),
else `bodyBase64` holds the bytes in standard base64 and `body` is absent: either way the bytes that come
back are the bytes received, byte for byte. `headers` is the message's NATS headers as the client read
them, or null. The `format` marker is what tells a recorded line from a job body in the same file.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["MARKER", "RECORDED_FORMAT", "RecordedMessage", "RecordingLineError", "decode_recorded", "encode_recorded"]

RECORDED_FORMAT = "agent-worker.recorded-job.v1"
#: Bytes every recorded line holds, searched before parsing a JSONL line as a possible recording.
MARKER = RECORDED_FORMAT.encode()


class RecordingLineError(ValueError):
    """A line marked as a recorded message whose fields are not what the format says."""


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    subject: str
    body: bytes
    headers: Mapping[str, str] | None = None
    received_at: datetime | None = None


def encode_recorded(message: RecordedMessage) -> bytes:
    """One JSONL line, newline included."""
    record: dict[str, Any] = {
        "format": RECORDED_FORMAT,
        "subject": message.subject,
        "receivedAt": None if message.received_at is None else _iso_millis(message.received_at),
        "headers": None if message.headers is None else dict(message.headers),
    }
    try:
        record["body"] = message.body.decode("utf-8")
    except UnicodeDecodeError:
        record["bodyBase64"] = base64.b64encode(message.body).decode("ascii")
    return orjson.dumps(record) + b"\n"


def decode_recorded(document: object) -> RecordedMessage | None:
    """The recorded message a parsed JSON value holds; None when it is not one (a job body, say).

    Raises `RecordingLineError` when it carries the format marker but its fields are wrong.
    """
    if not isinstance(document, dict) or document.get("format") != RECORDED_FORMAT:
        return None
    subject, headers, text, encoded = (
        document.get("subject"),
        document.get("headers"),
        document.get("body"),
        document.get("bodyBase64"),
    )
    if not isinstance(subject, str):
        raise RecordingLineError("a recorded message needs its subject as a string")
    if headers is not None and not (isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())):
        raise RecordingLineError("headers must be an object of strings, or null")
    if isinstance(text, str) and encoded is None:
        body = text.encode("utf-8")
    elif isinstance(encoded, str) and text is None:
        try:
            body = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise RecordingLineError(f"bodyBase64 is not base64: {exc}") from None
    else:
        raise RecordingLineError("a recorded message needs exactly one of body (text) and bodyBase64")
    return RecordedMessage(subject=subject, body=body, headers=headers)


def _iso_millis(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
