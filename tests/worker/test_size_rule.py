"""The size rule's arithmetic is the server's: a message of exactly `max_payload` bytes, headers included,
is accepted, and one byte more is what the server refuses (closing the connection), so `check_fits` refuses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from worker.embedded import NatsServer
from worker.jetstream.store import PayloadTooLarge, check_fits, header_bytes, room_for_body

pytestmark = pytest.mark.nats

LIMIT = 4096
HEADERS = {
    "Maschina-Dlq-Reason": "not_json",
    "Maschina-Dlq-Detail": "Le corps n'est pas du JSON — « ça » arrive 🙂",
    "Nats-Msg-Id": "maschina.jobs.agent.agent.execute:17",
}


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[NatsServer]:
    config = tmp_path / "nats.conf"
    config.write_text(f"max_payload: {LIMIT}\n")
    with NatsServer(config_file=config) as server:
        yield server


def test_header_block_size_counts_utf8_bytes_and_framing() -> None:
    assert header_bytes(None) == 0
    assert header_bytes({}) == len(b"NATS/1.0\r\n\r\n")
    assert header_bytes({"A": "é"}) == len(b"NATS/1.0\r\nA: \xc3\xa9\r\n\r\n")


async def test_exactly_max_payload_is_accepted_and_one_byte_more_refused(small_server: NatsServer) -> None:
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    closed = asyncio.Event()

    async def on_closed() -> None:
        closed.set()

    nc = await nats.connect(small_server.url, error_cb=on_error, closed_cb=on_closed, allow_reconnect=False)
    try:
        assert nc.max_payload == LIMIT
        room = room_for_body(nc, HEADERS)
        body = b"x" * room
        check_fits(nc, body, HEADERS)
        sub = await nc.subscribe("size.test")
        await nc.publish("size.test", body, headers=HEADERS)
        received = await sub.next_msg(timeout=5)
        assert len(received.data) == room
        with pytest.raises(PayloadTooLarge) as refused:
            check_fits(nc, body + b"x", HEADERS)
        assert (refused.value.size, refused.value.limit) == (LIMIT + 1, LIMIT)
        # What the check saves us from: the server refuses that one byte more and closes the connection.
        await nc.publish("size.test", body + b"x", headers=HEADERS)
        await asyncio.wait_for(closed.wait(), 5)
        assert nc.is_closed
        assert errors  # the server's -ERR, or the reset that follows it
    finally:
        await nc.close()
