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
