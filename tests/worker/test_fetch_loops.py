"""The fetch loop and the advisory loop survive an exception of their own: logged with its traceback, and on.

Only a closed connection ends them, and the log says so (`fetch_loop_ended`); /healthz turns unhealthy
when the fetch loop stops going round (see `Worker.healthy`), not because one round failed.
"""

from __future__ import annotations

from typing import Any

import pytest
from nats.aio.client import Client
from structlog.testing import capture_logs

from tests.worker.support import ResultWatch, StartWorker, eventually, job, new_run_id, publish_job
from worker import service
from worker.jetstream.pull import Puller

pytestmark = pytest.mark.nats


def _fail_once(puller: Puller, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the puller's next request raise a bug-like error; later ones work. Returns the calls' batches."""
    real = puller.pull
    calls: list[int] = []

    async def pull(batch: int, **kwargs: Any) -> bool:
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("a bug in the fetch path")
        return await real(batch, **kwargs)

    monkeypatch.setattr(puller, "pull", pull)
    return calls


async def test_fetch_loop_logs_an_exception_and_keeps_serving(
    start_worker: StartWorker, client: Client, results: ResultWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = await start_worker()
    assert worker._consumer is not None
    with capture_logs() as logs:
        calls = _fail_once(worker._consumer._puller, monkeypatch)
        run_id = new_run_id()
        await publish_job(client, job(run_id))
        result = await results.one(run_id)
    assert result["status"] == "completed"
    assert len(calls) >= 2
    [error] = [event for event in logs if event["event"] == "fetch_loop_error"]
    assert error["exc_info"] is True
    assert error["log_level"] == "error"
    assert worker.healthy()
    assert worker.is_ready()


async def test_advisory_loop_logs_an_exception_and_keeps_serving(
    start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = await start_worker()
    assert worker._advisories is not None
    puller = worker._advisories._puller
    with capture_logs() as logs:
        calls = _fail_once(puller, monkeypatch)
        # Polled: the advisory loop has nothing to announce between two requests.
        await eventually(lambda: len(calls) >= 2, what="the advisory loop pulling again after the error")
    [error] = [event for event in logs if event["event"] == "advisory_loop_error"]
    assert error["exc_info"] is True
    assert worker._advisories._loop is not None
    assert not worker._advisories._loop.done()


async def test_healthz_turns_unhealthy_while_the_server_refuses_every_pull_and_says_why(
    start_worker: StartWorker, client: Client, results: ResultWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer deleted under a running replica: its pulls are refused (503), the loop stops counting
    rounds, /healthz turns unhealthy (here after 1 s instead of 30) and `pull_refused` names the status.
    Once the consumer is back, the same replica is healthy and serves again."""
    monkeypatch.setattr(service, "STALL_SECS", 1.0)
    worker = await start_worker()
    settings = worker.settings
    js = client.jetstream()
    config = (await js.consumer_info(settings.jobs_stream, settings.consumer)).config
    with capture_logs() as logs:
        await js.delete_consumer(settings.jobs_stream, settings.consumer)
        await eventually(lambda: not worker.healthy(), what="/healthz turning unhealthy")
    refused = [event for event in logs if event["event"] == "pull_refused"]
    assert refused
    assert refused[0]["status"] in ("409", "503")
    assert len(refused) <= 4, "logged when it changes and every 10 s, not on every request"
    assert worker._consumer is not None
    assert worker._consumer.running

    await js.add_consumer(settings.jobs_stream, config)
    await eventually(worker.healthy, what="/healthz healthy again")
    run_id = new_run_id()
    await publish_job(client, job(run_id))
    assert (await results.one(run_id))["status"] == "completed"
