"""Batched direct gets: the lookups started together go to the server as one multi_last request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from worker.jetstream.store import Inbox, LastGets

pytestmark = pytest.mark.nats

STREAM = "LASTGETS"


async def test_lookups_started_together_share_one_request(client: Client) -> None:
    js = client.jetstream()
    await js.add_stream(name=STREAM, subjects=["lg.*"], allow_direct=True)
    await js.publish("lg.a", b"a1")
    await js.publish("lg.a", b"a2")
    await js.publish("lg.b", b"b1")
    await js.publish("lg.empty", b"")
    requests: list[Msg] = []
    seen = await client.subscribe(f"$JS.API.DIRECT.GET.{STREAM}", cb=_collect(requests))
    last_gets = LastGets(client, Inbox(client), STREAM)

    found = await asyncio.gather(*(last_gets.last(f"lg.{name}") for name in ("a", "b", "missing", "a", "empty")))
    none_there = await last_gets.last("lg.nothing")

    await client.flush()
    await seen.unsubscribe()
    assert found == [b"a2", b"b1", None, b"a2", None]
    assert none_there is None
    assert len(requests) == 2  # the gathered five, then the lone one


async def test_a_missing_stream_is_a_transient_no_responders(client: Client) -> None:
    """`through_outages` waits out NoRespondersError, as it does for a single get."""
    with pytest.raises(nats.errors.NoRespondersError):
        await LastGets(client, Inbox(client), "NO_SUCH_STREAM", timeout=2.0).last("lg.a")


def _collect(into: list[Msg]) -> Callable[[Msg], Awaitable[None]]:
    async def collect(msg: Msg) -> None:
        into.append(msg)

    return collect
