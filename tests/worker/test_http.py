"""`/metrics`, `/healthz` and `/readyz` on WORKER_HTTP_PORT."""

from __future__ import annotations

import httpx
import pytest
from nats.aio.client import Client

from tests.worker.support import ResultWatch, StartWorker, eventually, job, publish_job
from worker.embedded import NatsServer, free_port

pytestmark = pytest.mark.nats


async def test_probes_and_metrics(
    nats_server: NatsServer, start_worker: StartWorker, client: Client, results: ResultWatch
) -> None:
    port = free_port()
    worker = await start_worker(http_port=port)
    base = f"http://127.0.0.1:{port}"
    await publish_job(client, job(tier="gold", model="made-up"))
    await publish_job(client, job())
    await publish_job(client, b"not json")

    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        await eventually(lambda: len(results.by_run) == 2, what="two results")
        await eventually(
            lambda: (
                worker.metrics.registry.get_sample_value("agent_worker_dead_letters_total", {"reason": "not_json"}) == 1
            ),
            what="dead letter counted",
        )
        metrics = (await http.get("/metrics")).text

        nats_server.stop()
        await eventually(lambda: not worker.is_ready(), what="disconnect noticed")
        assert (await http.get("/readyz")).status_code == 503
        assert (await http.get("/healthz")).status_code == 200  # alive, just not connected
        nats_server.start()

    assert 'agent_worker_jobs_total{model="unknown",status="rejected",tier="unknown"} 1.0' in metrics
    assert 'agent_worker_jobs_total{model="claude-sonnet-4-6",status="completed",tier="m5"} 1.0' in metrics
    assert 'agent_worker_billed_tokens_total{model="claude-sonnet-4-6",tier="m5"} 3156.0' in metrics
    assert 'agent_worker_dead_letters_total{reason="not_json"} 1.0' in metrics
    assert 'agent_worker_provider_latency_seconds_count{model="claude-sonnet-4-6",provider="anthropic"} 1.0' in metrics
    assert 'agent_worker_job_duration_seconds_count{status="completed"} 1.0' in metrics
    assert "agent_worker_jobs_in_flight 0.0" in metrics


async def test_http_port_0_serves_nothing(start_worker: StartWorker) -> None:
    worker = await start_worker(http_port=0)
    assert worker.is_ready()
    assert worker.healthy()
