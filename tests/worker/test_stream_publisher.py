"""The stores' own publish-and-await-PubAck path: what it answers and what it raises, against a real server."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import APIError, NoStreamResponseError

from worker.jetstream.store import Inbox, StreamPublisher

pytestmark = pytest.mark.nats

STREAM = "PUBLISHED"


async def test_a_first_store_is_fresh_and_the_same_message_id_again_a_duplicate(client: Client) -> None:
    js = client.jetstream()
    await js.add_stream(name=STREAM, subjects=["pub.*"])
    publisher = StreamPublisher(client, Inbox(client))

    first = await publisher.publish("pub.a", b"one", stream=STREAM, headers={"Nats-Msg-Id": "a"})
    again = await publisher.publish("pub.a", b"two", stream=STREAM, headers={"Nats-Msg-Id": "a"})
    other = await publisher.publish("pub.b", b"three", stream=STREAM, headers={"Nats-Msg-Id": "b"})

    assert (first, again, other) == (False, True, False)
    assert (await js.get_last_msg(STREAM, "pub.a")).data == b"one"
    assert (await js.stream_info(STREAM)).state.messages == 2


async def test_a_refused_store_raises_the_servers_error(client: Client) -> None:
    await client.jetstream().add_stream(name=STREAM, subjects=["pub.*"])
    publisher = StreamPublisher(client, Inbox(client))
    headers = {"Nats-Expected-Last-Subject-Sequence": "0"}
    await publisher.publish("pub.a", b"one", stream=STREAM, headers=headers)

    with pytest.raises(APIError) as wrong_sequence:
        await publisher.publish("pub.a", b"two", stream=STREAM, headers=headers)
    with pytest.raises(APIError) as wrong_stream:
        await publisher.publish("pub.c", b"three", stream="ANOTHER", headers={})

    assert wrong_sequence.value.err_code == 10071
    assert wrong_stream.value.err_code == 10060


async def test_no_stream_on_the_subject_is_no_stream_response(client: Client) -> None:
    with pytest.raises(NoStreamResponseError):
        await StreamPublisher(client, Inbox(client)).publish("nobody.here", b"x", stream=STREAM, headers={})


async def test_an_unanswered_store_times_out_and_a_late_answer_is_dropped(client: Client) -> None:
    """A listener that is not a stream holds the request; its answer after the timeout must not be taken."""
    held: asyncio.Queue[Msg] = asyncio.Queue()

    async def hold(msg: Msg) -> None:
        await held.put(msg)

    await client.subscribe("held.a", cb=hold)
    inbox = Inbox(client)
    publisher = StreamPublisher(client, inbox, timeout=0.2)

    with pytest.raises(TimeoutError):
        await publisher.publish("held.a", b"x", stream=STREAM, headers={})
    request = await held.get()
    await client.publish(request.reply, b'{"stream":"PUBLISHED","seq":1}')
    await client.flush()

    assert inbox._handlers == {}
