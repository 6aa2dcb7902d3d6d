"""T1's baseline, run as its own process: the least a consumer can do per job with nats-py.

Pull a batch, and for every message at once: parse the JSON, store a small result with `Nats-Msg-Id`
(waiting for its PubAck), ack. No door, gate, billing or provider. Reads NATS_URL; prints the ready marker once
it is pulling.

With `--worker-path` (T3's floor) it also makes the worker's other NATS round trips: it looks the run's
stored result up before storing, and sends the result to the job's `replyTo` after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from bench.broker import JOBS_STREAM, RESULTS_STREAM
from bench.process import READY
from worker.contract import JOB_SUBJECT, MSG_ID_HEADER, RESULTS_SUBJECT_PREFIX
from worker.eventloop import run_event_loop

__all__ = ["main"]


async def _handle(nc: Client, js: JetStreamContext, msg: Msg) -> None:
    run_id = orjson.loads(msg.data)["data"]["runId"]
    result = orjson.dumps({"runId": run_id, "status": "completed"})
    await js.publish(RESULTS_SUBJECT_PREFIX + run_id, result, headers={MSG_ID_HEADER: run_id})
    await msg.ack()


async def _handle_as_worker(nc: Client, js: JetStreamContext, msg: Msg) -> None:
    job = orjson.loads(msg.data)
    run_id = job["data"]["runId"]
    with contextlib.suppress(NotFoundError):  # none stored: the job runs
        await js.get_last_msg(RESULTS_STREAM, RESULTS_SUBJECT_PREFIX + run_id, direct=True)
    result = orjson.dumps({"runId": run_id, "status": "completed"})
    await js.publish(RESULTS_SUBJECT_PREFIX + run_id, result, headers={MSG_ID_HEADER: run_id})
    await nc.publish(job["replyTo"], result)
    await msg.ack()


async def _consume(url: str, batch: int, *, worker_path: bool) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=30, max_deliver=5, max_ack_pending=10_000)
    sub = await js.pull_subscribe(JOB_SUBJECT, durable="bare", stream=JOBS_STREAM, config=config)
    print(READY.decode(), flush=True)
    while True:
        try:
            msgs = await sub.fetch(batch, timeout=1.0)
        except TimeoutError:
            continue
        handle = _handle_as_worker if worker_path else _handle
        await asyncio.gather(*(handle(nc, js, msg) for msg in msgs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_nats")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--worker-path", action="store_true", help="also the lookup before and the reply after")
    args = parser.parse_args(argv)
    run_event_loop(_consume(os.environ["NATS_URL"], args.batch, worker_path=args.worker_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
