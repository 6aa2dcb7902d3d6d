"""Publishing as a hostile client would: raw NATS protocol over a socket, so header bytes are exactly ours.

nats-py (like most clients) refuses header names outside the RFC's tokens and sends values as UTF-8 text;
another client, or a hand-written one, sends whatever bytes it likes. The server stores them as they are.
"""

from __future__ import annotations

import asyncio

import orjson

__all__ = ["header_block", "raw_publish"]

_ACK_INBOX = b"_RAW_ACK.1"
_ACK_WITHIN_SECS = 10.0


def header_block(*pairs: tuple[bytes, bytes], status_line: bytes = b"NATS/1.0") -> bytes:
    """`NATS/1.0\\r\\n`, one `name: value\\r\\n` line per pair, and the closing `\\r\\n`, byte for byte."""
    return status_line + b"\r\n" + b"".join(name + b": " + value + b"\r\n" for name, value in pairs) + b"\r\n"


async def raw_publish(port: int, subject: str, headers: bytes, body: bytes) -> dict[str, object]:
    """HPUB `headers` + `body` to `subject` as a JetStream publish and return the stream's PubAck as JSON."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readline()  # INFO
        writer.write(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n')
        writer.write(b"SUB " + _ACK_INBOX + b" 1\r\n")
        command = b"HPUB %s %s %d %d\r\n" % (subject.encode(), _ACK_INBOX, len(headers), len(headers) + len(body))
        writer.write(command + headers + body + b"\r\n")
        await writer.drain()
        async with asyncio.timeout(_ACK_WITHIN_SECS):
            while True:
                line = await reader.readline()
                if line.startswith(b"PING"):
                    writer.write(b"PONG\r\n")
                elif line.startswith(b"-ERR"):
                    raise RuntimeError(f"server refused the publish: {line!r}")
                elif line.startswith(b"MSG "):
                    size = int(line.split()[-1])
                    ack: dict[str, object] = orjson.loads((await reader.readexactly(size + 2))[:-2])
                    return ack
    finally:
        writer.close()
