"""T2's and T3's baseline, run as its own process: the same SDK calls the worker makes, without NATS.

`--provider anthropic` (default) or `openai`. The client is the worker's own (`AnthropicProvider` or
`OpenAIProvider` builds it: aiohttp transport, pool sized to the concurrency, no SDK retries), so the
only difference from the worker is everything the worker adds; the call is the SDK's plain one, its
answer parsed into the SDK's own model. `burst` makes `--calls` calls at most `--concurrency` at once and
reports the wall and CPU time; `paced` starts one call every 1/`--rate` seconds and reports each call's
latency. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from bench.providers import ANTHROPIC, OPENAI, PROVIDERS
from testkit.jobs import example_job
from worker.eventloop import run_event_loop

__all__ = ["main"]

# The benchmark jobs' own prompt (testkit.jobs), so the bare call and the worker's call send the same text.
_JOB = example_job()
_SYSTEM: str = _JOB["systemPrompt"]
_MESSAGE: str = _JOB["inputPayload"]["message"]


@dataclass(frozen=True, slots=True)
class _Sdk:
    call: Callable[[], Awaitable[object]]
    """One call shaped like a benchmark job's."""
    close: Callable[[], Awaitable[None]]


def _sdk(provider: str, base_url: str, concurrency: int) -> _Sdk:
    """The provider's own client, reused rather than rebuilt here, so that the settings cannot drift apart."""
    if provider == OPENAI.name:
        from worker.providers.openai import OpenAIProvider

        openai_client = OpenAIProvider(api_key="test", base_url=base_url, concurrency=concurrency)._client

        async def chat() -> object:
            return await openai_client.chat.completions.create(
                model=OPENAI.model,
                max_completion_tokens=1024,
                messages=[{"role": "developer", "content": _SYSTEM}, {"role": "user", "content": _MESSAGE}],
            )

        return _Sdk(chat, openai_client.close)
    from worker.providers.anthropic import AnthropicProvider

    anthropic_client = AnthropicProvider(api_key="test", base_url=base_url, concurrency=concurrency)._client

    async def messages() -> object:
        return await anthropic_client.messages.create(
            model=ANTHROPIC.model,
            max_tokens=1024,
            system=_SYSTEM,
            messages=[{"role": "user", "content": _MESSAGE}],
        )

    return _Sdk(messages, anthropic_client.close)


async def _call(sdk: _Sdk) -> float:
    """One call; returns its latency in seconds."""
    started = time.perf_counter()
    await sdk.call()
    return time.perf_counter() - started


async def _burst(sdk: _Sdk, calls: int, warmup: int, concurrency: int) -> dict[str, float]:
    for _ in range(warmup):
        await _call(sdk)
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            await _call(sdk)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    return {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu}


async def _paced(sdk: _Sdk, calls: int, warmup: int, rate: float) -> dict[str, list[float]]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for index in range(warmup + calls):
        await asyncio.sleep(max(0.0, start + index / rate - loop.time()))
        tasks.append(asyncio.create_task(_call(sdk)))
    latencies = await asyncio.gather(*tasks)
    return {"latencies": list(latencies[warmup:])}


async def _main(args: argparse.Namespace) -> None:
    sdk = _sdk(args.provider, args.base_url, args.concurrency)
    try:
        if args.mode == "burst":
            report: dict[str, object] = {**await _burst(sdk, args.calls, args.warmup, args.concurrency)}
        else:
            report = {**await _paced(sdk, args.calls, args.warmup, args.rate)}
    finally:
        await sdk.close()
    sys.stdout.buffer.write(orjson.dumps(report) + b"\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_sdk")
    parser.add_argument("mode", choices=["burst", "paced"])
    parser.add_argument("--provider", choices=sorted(PROVIDERS), default=ANTHROPIC.name)
    parser.add_argument("--base-url", required=True, help="the SDK's base URL")
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=100.0, help="paced: calls started per second")
    parser.add_argument("--warmup", type=int, default=0, help="calls made first, one at a time, and not counted")
    run_event_loop(_main(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
