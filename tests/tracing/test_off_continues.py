"""Tracing off (no OTLP endpoint): a job's trace is still continued on its result record and reply copy.

docs/contract.md §10: the record and the copy carry the job span's `traceparent`. Off, that span is recorded
nowhere, but its id is new and its trace is the job's, so whoever reads the result joins the API's trace.
"""

from __future__ import annotations

import pytest
from nats.aio.client import Client

from tests.worker.support import Listener, StartWorker, job, publish_job
from worker import tracing
from worker.contract import TRACEPARENT_HEADER
from worker.jetstream.store import result_subject

pytestmark = pytest.mark.nats

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("headers", "continued"),
    [
        pytest.param({TRACEPARENT_HEADER: PARENT}, True, id="valid"),
        pytest.param({TRACEPARENT_HEADER: PARENT.replace("-01", "-00")}, True, id="unsampled"),
        pytest.param({TRACEPARENT_HEADER: f"00-{'0' * 32}-00f067aa0ba902b7-01"}, False, id="zero-trace"),
        pytest.param({TRACEPARENT_HEADER: f"00-{TRACE}-{'0' * 16}-01"}, False, id="zero-span"),
        pytest.param({TRACEPARENT_HEADER: f"ff-{TRACE}-00f067aa0ba902b7-01"}, False, id="version-ff"),
        pytest.param({TRACEPARENT_HEADER: PARENT.upper()}, False, id="upper-case"),
        pytest.param({TRACEPARENT_HEADER: "garbage"}, False, id="garbage"),
        pytest.param({"Other": "x"}, False, id="none"),
        pytest.param(None, False, id="no-headers"),
    ],
)
def test_result_headers_off(headers: dict[str, str] | None, continued: bool) -> None:
    assert not tracing.enabled
    out = tracing.result_headers(headers)
    if not continued:
        assert out is None
        return
    assert out is not None
    version, trace, span, flags = out[TRACEPARENT_HEADER].split("-")
    assert headers is not None
    assert (version, trace, flags) == ("00", TRACE, headers[TRACEPARENT_HEADER][-2:])
    assert len(span) == 16
    assert span not in {"00f067aa0ba902b7", "0" * 16}


async def test_record_and_reply_continue_the_jobs_trace_with_tracing_off(
    start_worker: StartWorker, client: Client
) -> None:
    await start_worker()
    inbox = await Listener("_INBOX.api.trace-off").open(client)
    body = job(reply_to=inbox.subject)
    record = await Listener(result_subject(body["data"]["runId"])).open(client)
    await publish_job(client, body, headers={TRACEPARENT_HEADER: PARENT})

    stored, copy = await record.next(), await inbox.next()

    assert stored.headers is not None
    assert copy.headers is not None
    traceparent = stored.headers[TRACEPARENT_HEADER]
    assert copy.headers[TRACEPARENT_HEADER] == traceparent
    version, trace, span, flags = traceparent.split("-")
    assert (version, trace, flags) == ("00", TRACE, "01")
    assert span != "00f067aa0ba902b7"  # the job span's id, not the API's span


async def test_no_traceparent_means_no_trace_header(start_worker: StartWorker, client: Client) -> None:
    await start_worker()
    body = job()
    record = await Listener(result_subject(body["data"]["runId"])).open(client)
    await publish_job(client, body, headers={TRACEPARENT_HEADER: "00-nope"})

    stored = await record.next()

    assert TRACEPARENT_HEADER not in (stored.headers or {})
