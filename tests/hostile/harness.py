"""One long-lived `agent-worker run` replica per test module, with its own nats-server and fake Anthropic.

The hostile suites publish many jobs at one replica rather than starting a replica per case: the point
is that one process survives all of them. Outcomes are read back from the streams (tests/reliability's
ledger), never from what the worker says about itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from nats.aio.client import Client

from testkit.process import FakeProcess, WorkerProcess
from tests.reliability.ledger import Ledger, read_ledger, wait_until
from tests.reliability.traffic import envelope
from worker.contract import CONSUMER, JOBS_STREAM
from worker.embedded import NatsServer

__all__ = ["API_KEY", "Outcomes", "Stack", "job_body", "new_run_id", "settle", "start_stack"]

# Recognisable, so a test can look for it anywhere the worker writes.
API_KEY = "sk-ant-hostile-SECRET-do-not-print-0123456789abcdef"


@dataclass
class Stack:
    server: NatsServer
    provider: FakeProcess
    worker: WorkerProcess

    def close(self) -> None:
        self.worker.stop()
        self.provider.stop()
        self.server.close()

    async def healthz(self) -> int:
        async with httpx.AsyncClient(timeout=2.0) as client:
            response = await client.get(f"http://127.0.0.1:{self.worker.http_port}/healthz")
            return response.status_code

    def output(self) -> str:
        """Everything the replica wrote, stdout and stderr."""
        return self.worker.log_path.read_text(errors="replace")


def start_stack(log_dir: Path, *, server_config: str = "", server_port: int | None = None, **settings: str) -> Stack:
    """A nats-server (with `server_config` lines, e.g. `max_payload: 65536`), a fake Anthropic, one replica."""
    config = None
    if server_config:
        config = log_dir / "nats-server.conf"
        config.write_text(server_config + "\n")
    server = NatsServer(port=server_port, store_dir=log_dir / "nats-store", config_file=config)
    server.store_dir.mkdir()
    server.start()
    provider = FakeProcess("anthropic", name="fake-anthropic", log_dir=log_dir)
    worker = WorkerProcess(
        "replica",
        {
            "NATS_URL": server.url,
            "ANTHROPIC_API_KEY": API_KEY,
            "WORKER_CONCURRENCY": "32",
            "WORKER_ACK_WAIT_SECS": "10",
            "WORKER_MAX_DELIVER": "3",
            "WORKER_SHUTDOWN_GRACE_SECS": "5",
            **settings,
        },
        log_dir,
    )
    stack = Stack(server, provider, worker)
    try:
        asyncio.run(provider.start())
        worker.env["ANTHROPIC_BASE_URL"] = provider.url
        asyncio.run(worker.start())
    except BaseException:
        stack.close()
        raise
    return stack


def job_body(run_id: str, **fields: Any) -> bytes:
    return orjson.dumps(envelope(run_id, **fields))


def new_run_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Outcomes:
    """What the streams hold for some runs and some dead-lettered bodies, with the figures tests state."""

    ledger: Ledger
    run_ids: set[str]

    @property
    def results(self) -> int:
        return sum(len(self.ledger.results.get(run_id, [])) for run_id in self.run_ids)

    @property
    def lost(self) -> set[str]:
        dead = {letter.run_id for letter in self.ledger.dead_letters}
        return {run_id for run_id in self.run_ids if run_id not in self.ledger.results and run_id not in dead}

    @property
    def duplicated(self) -> set[str]:
        return {run_id for run_id in self.run_ids if len(self.ledger.results.get(run_id, [])) > 1}

    def figures(self, sent: int) -> str:
        dead = sum(1 for letter in self.ledger.dead_letters if letter.run_id in self.run_ids)
        return (
            f"sent={sent} results={self.results} dead_letters={dead} "
            f"lost={len(self.lost)} duplicated={len(self.duplicated)}"
        )


async def settle(
    nc: Client, run_ids: Iterable[str], *, dead_bodies: Iterable[bytes] = (), within: float = 60.0
) -> Outcomes:
    """Until every run has a result or a dead letter, each of `dead_bodies` was dead-lettered (whole or cut
    short), and the consumer has nothing pending or unacknowledged."""
    wanted = set(run_ids)
    bodies = list(dead_bodies)
    js = nc.jetstream()

    async def done() -> Outcomes | None:
        consumer = await js.consumer_info(JOBS_STREAM, CONSUMER)
        if consumer.num_pending or consumer.num_ack_pending:
            return None
        outcomes = Outcomes(await read_ledger(js), wanted)
        if outcomes.lost:
            return None
        letters = [letter.body for letter in outcomes.ledger.dead_letters]
        if not all(any(body.startswith(letter) and letter for letter in letters) for body in bodies):
            return None
        return outcomes

    outcomes = await wait_until(
        done, within=within, what=f"outcomes of {len(wanted)} runs and {len(bodies)} dead letters"
    )
    assert outcomes is not None
    return outcomes
