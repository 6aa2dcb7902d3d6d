"""T1's baseline, run as its own process: the least a consumer can do per job with nats-py.

Pull a batch, and for every message at once: parse the JSON, store a small result with `Nats-Msg-Id`
(waiting for its PubAck), ack. No door, gate, billing or provider. Reads NATS_URL; prints the ready marker once
it is pulling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import nats
import orjson
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from bench.broker import JOBS_STREAM
from bench.jobs import JOB_SUBJECT, RESULT_PREFIX
from bench.loop import run_loop
from bench.process import READY

__all__ = ["main"]


async def _handle(js: JetStreamContext, msg: Msg) -> None:
    run_id = orjson.loads(msg.data)["data"]["runId"]
    result = orjson.dumps({"runId": run_id, "status": "completed"})
    await js.publish(RESULT_PREFIX + run_id, result, headers={"Nats-Msg-Id": run_id})
    await msg.ack()


async def _consume(url: str, batch: int) -> None:
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
        await asyncio.gather(*(_handle(js, msg) for msg in msgs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_nats")
    parser.add_argument("--batch", type=int, required=True)
    args = parser.parse_args(argv)
    run_loop(_consume(os.environ["NATS_URL"], args.batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
