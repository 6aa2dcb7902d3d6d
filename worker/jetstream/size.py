"""One size rule for everything the worker publishes (docs/contract.md §6, §7): body and headers together
within the `max_payload` the server announced.

The server counts the header block against `max_payload`, nats-py checks only the body, and a publish the
server refuses closes the connection for good. So every store (result records, dead letters) and every reply
copy is measured here first: the body's length plus the header block exactly as nats-py writes it —
`NATS/1.0\\r\\n`, one `name: value\\r\\n` line per header, then `\\r\\n` — arithmetic on lengths, no encoding
of the message. The limit is read from the connection each time: nats-py takes it from the INFO of every
(re)connect, so a reconnect to a server with another limit is followed at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from nats.aio.client import Client

__all__ = ["PayloadTooLarge", "check_fits", "header_bytes", "room_for_body"]

_STATUS_LINE = len(b"NATS/1.0\r\n")
_END = len(b"\r\n")
_LINE_EXTRA = len(b": \r\n")


class PayloadTooLarge(Exception):  # noqa: N818 -- named after what happened, as nats-py's MaxPayloadError is
    """A message that the server would refuse (and close the connection for); nothing was sent."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes with headers, above the server's max_payload of {limit} bytes")
        self.size = size
        self.limit = limit


def header_bytes(headers: Mapping[str, str] | None) -> int:
    """The header block's size on the wire; 0 without headers (nats-py then sends a plain PUB).

    Values are counted as nats-py sends them: stripped, UTF-8. Callers pass single-line values.
    """
    if headers is None:
        return 0
    size = _STATUS_LINE + _END
    for name, value in headers.items():
        value = value.strip()
        size += len(name) + _LINE_EXTRA + (len(value) if value.isascii() else len(value.encode()))
    return size


def check_fits(nc: Client, body: bytes, headers: Mapping[str, str] | None) -> None:
    """Raise `PayloadTooLarge` unless `body` with `headers` fits the connected server's `max_payload`."""
    size = len(body) + header_bytes(headers)
    if size > nc.max_payload:
        raise PayloadTooLarge(size, nc.max_payload)


def room_for_body(nc: Client, headers: Mapping[str, str] | None) -> int:
    """How many body bytes fit beside `headers` (negative when the headers alone do not)."""
    return nc.max_payload - header_bytes(headers)
