"""Issue 11 item 1: a job's headers never reach code that reads them as JetStream status messages (docs/contract.md §2).

One real `agent-worker run` replica takes valid jobs whose headers are hostile: `Status` with the codes the
server itself uses (404, 408, 409, 100, 503), `Status` that is no number, `Status: 500` without a
`Description`, hundreds of headers, long values, bytes that are not UTF-8 (sent over the raw protocol),
and a header block whose first line is a server status line. Before the fix, the first kind killed the
replica (ValueError/KeyError out of nats-py's fetch) and the second was dropped on every delivery. Now each
job completes once, on its first delivery, with one provider call, and the replica is still serving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from tests.hostile.harness import Stack, job_body, new_run_id, settle, start_stack
from tests.hostile.raw import header_block, raw_publish
from worker.contract import JOB_SUBJECT

pytestmark = pytest.mark.system

# Header sets nats-py can send: (label, headers).
TEXT_HEADERS: list[tuple[str, dict[str, str]]] = [
    ("Status: pending", {"Status": "pending"}),
    ("Status: 500 without Description", {"Status": "500"}),
    ("Status: 404", {"Status": "404"}),
    ("Status: 404 No Messages", {"Status": "404", "Description": "No Messages"}),
    ("Status: 408", {"Status": "408"}),
    ("Status: 409", {"Status": "409", "Description": "Consumer Deleted"}),
    ("Status: 100 heartbeat", {"Status": "100", "Description": "Idle Heartbeat"}),
    ("Status: 503", {"Status": "503"}),
    ("Status: empty", {"Status": " "}),
    ("Description alone", {"Description": "Request Timeout"}),
    ("300 headers", {f"X-Hostile-{n}": f"value-{n}" for n in range(300)}),
    ("long value (JetStream keeps at most 64 KiB of headers)", {"X-Long": "v" * 60_000}),
    ("Maschina-Signature without signing", {"Maschina-Signature": "sha256=" + "0" * 64}),
]
# Header blocks only a raw client sends: (label, block).
RAW_HEADERS: list[tuple[str, bytes]] = [
    ("value not UTF-8", header_block((b"X-Bin", b"\xff\xfe\x80\xc3"))),
    ("name not UTF-8", header_block((b"X-\xff\xfe", b"1"))),
    ("Status value not UTF-8", header_block((b"Status", b"\xff\xfe"))),
    ("status line 404", header_block(status_line=b"NATS/1.0 404 No Messages")),
    ("status line 408 with Status: 409", header_block((b"Status", b"409"), status_line=b"NATS/1.0 408")),
    ("status line not UTF-8", header_block((b"X-A", b"1"), status_line=b"NATS/1.0 \xff\xfe\xfd")),
    ("line without a colon", header_block((b"Status", b"404"))[:-2] + b"garbage line\r\n\r\n"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(Path(tmp_path_factory.mktemp("headers")))
    yield stack
    stack.close()


@pytest.fixture
async def nc(stack: Stack) -> AsyncIterator[Client]:
    client = await nats.connect(stack.server.url)
    yield client
    await client.close()


async def test_hostile_headers_are_read_like_any_other_job(stack: Stack, nc: Client) -> None:
    js = nc.jetstream()
    sent: dict[str, str] = {}
    for label, headers in TEXT_HEADERS:
        run_id = new_run_id("headers")
        await js.publish(JOB_SUBJECT, job_body(run_id), headers=headers)
        sent[run_id] = label
    for label, block in RAW_HEADERS:
        run_id = new_run_id("raw-headers")
        ack = await raw_publish(stack.server.port, JOB_SUBJECT, block, job_body(run_id))
        assert "seq" in ack, f"{label}: {ack}"
        sent[run_id] = label
    # And the job after them: the replica is still serving.
    last = new_run_id("after")
    await js.publish(JOB_SUBJECT, job_body(last))
    sent[last] = "plain job after the hostile ones"

    outcomes = await settle(nc, sent, within=90)
    print(f"hostile headers: {outcomes.figures(sent=len(sent))}")
    assert not outcomes.lost
    assert not outcomes.duplicated
    for run_id, label in sent.items():
        record = outcomes.ledger.one(run_id)
        assert (record.status, record.attempt) == ("completed", 1), f"{label}: {record}"
    assert stack.worker.alive, stack.worker.log_tail()
    assert await stack.healthz() == 200
    assert int((await stack.provider.stats())["calls"]) == len(sent)
    output = stack.output()
    for event in ("job_crashed", "fetch_loop_error", "pulled_message_not_handled", "fetch_loop_ended"):
        assert event not in output, f"the replica logged {event}"
