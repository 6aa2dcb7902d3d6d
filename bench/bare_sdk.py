"""T2's and T3's baseline, run as its own process: the same Anthropic SDK calls the worker makes, without NATS.

The client is the worker's own (`AnthropicProvider` builds it: aiohttp transport, pool sized to the
concurrency, no SDK retries), so the only difference from the worker is everything the worker adds.
`burst` makes `--calls` calls at most `--concurrency` at once and reports the wall and CPU time; `paced` starts
one call every 1/`--rate` seconds and reports each call's latency. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import anthropic
import orjson

from bench.loop import run_loop
from worker.providers.anthropic import AnthropicProvider

__all__ = ["main"]


def _client(base_url: str, concurrency: int) -> anthropic.AsyncAnthropic:
    provider = AnthropicProvider(api_key="test", base_url=base_url, concurrency=concurrency)
    # The provider's own client, reused rather than rebuilt here, so that the settings cannot drift apart.
    return provider._client


async def _call(client: anthropic.AsyncAnthropic) -> float:
    """One Messages call shaped like a benchmark job's; returns its latency in seconds."""
    started = time.perf_counter()
    await client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=1024,
        system='You are a Maschina research agent named "Scout". Complete the task provided.',
        messages=[{"role": "user", "content": "Summarise the attached notes."}],
    )
    return time.perf_counter() - started


async def _burst(client: anthropic.AsyncAnthropic, calls: int, warmup: int, concurrency: int) -> dict[str, float]:
    for _ in range(warmup):
        await _call(client)
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            await _call(client)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    return {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu}


async def _paced(client: anthropic.AsyncAnthropic, calls: int, warmup: int, rate: float) -> dict[str, list[float]]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for index in range(warmup + calls):
        await asyncio.sleep(max(0.0, start + index / rate - loop.time()))
        tasks.append(asyncio.create_task(_call(client)))
    latencies = await asyncio.gather(*tasks)
    return {"latencies": list(latencies[warmup:])}


async def _main(args: argparse.Namespace) -> None:
    client = _client(args.base_url, args.concurrency)
    try:
        if args.mode == "burst":
            report: dict[str, object] = {**await _burst(client, args.calls, args.warmup, args.concurrency)}
        else:
            report = {**await _paced(client, args.calls, args.warmup, args.rate)}
    finally:
        await client.close()
    sys.stdout.buffer.write(orjson.dumps(report) + b"\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_sdk")
    parser.add_argument("mode", choices=["burst", "paced"])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=100.0, help="paced: calls started per second")
    parser.add_argument("--warmup", type=int, default=0, help="calls made first, one at a time, and not counted")
    run_loop(_main(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
