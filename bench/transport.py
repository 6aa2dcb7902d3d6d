"""Which HTTP transport the OpenAI provider runs on: the SDK's aiohttp client against httpx2's own pool.

`python -m bench.transport [--calls N] [--concurrency N] [--delay S] [--trials N]` starts the fake Chat
Completions API in its own process, then for each transport a fresh child process makes `--calls` calls
through `OpenAIProvider.complete` (the worker's own call: raw answer, orjson) with at most `--concurrency`
in flight, and reports the child's CPU time per call; the two alternate `--trials` times (median kept).
The provider keeps the cheaper one (worker/providers/openai.py); figures go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Literal

import httpx2
import openai
import orjson

from bench.process import raise_open_files_limit
from bench.providers import OPENAI
from testkit import FakeConfig
from testkit.jobs import example_job
from testkit.process import FakeProcess, python_module
from worker.eventloop import run_event_loop
from worker.providers.base import ProviderRequest
from worker.providers.openai import OpenAIProvider

__all__ = ["main"]

Transport = Literal["aiohttp", "httpx"]
TRANSPORTS: tuple[Transport, ...] = ("aiohttp", "httpx")
_JOB = example_job()
_REQUEST = ProviderRequest(
    model="gpt-5",
    system_prompt=_JOB["systemPrompt"],
    user_message=_JOB["inputPayload"]["message"],
    max_tokens=1024,
)


def _provider(transport: Transport, base_url: str, concurrency: int) -> OpenAIProvider:
    """The worker's provider; for httpx its client is rebuilt the same way on the SDK's httpx2 client."""
    provider = OpenAIProvider(api_key="test", base_url=base_url, concurrency=concurrency)
    if transport == "httpx":
        old = provider._client
        limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        provider._client = openai.AsyncOpenAI(
            api_key="test",
            base_url=base_url,
            max_retries=0,
            timeout=old.timeout,
            http_client=openai.DefaultAsyncHttpxClient(limits=limits, timeout=old.timeout),
        )
    return provider


async def _child(transport: Transport, base_url: str, calls: int, concurrency: int) -> dict[str, float]:
    provider = _provider(transport, base_url, concurrency)
    await provider.complete(_REQUEST)  # connection set-up and first-call costs are not counted
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            await provider.complete(_REQUEST)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    report = {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu}
    await provider.aclose()
    return report


async def _measure(transport: Transport, base_url: str, calls: int, concurrency: int) -> dict[str, float]:
    argv = python_module("bench.transport", "--child", transport, "--base-url", base_url)
    argv += ["--calls", str(calls), "--concurrency", str(concurrency)]
    process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"bench.transport {transport} failed ({process.returncode})")
    report: dict[str, float] = orjson.loads(out)
    return report


async def _compare(args: argparse.Namespace) -> None:
    async with FakeProcess(OPENAI.name, FakeConfig(delay=args.delay)) as fake:
        runs: dict[Transport, list[dict[str, float]]] = {transport: [] for transport in TRANSPORTS}
        base_url = OPENAI.base_url(fake.url)
        for _ in range(args.trials):
            for transport in TRANSPORTS:
                runs[transport].append(await _measure(transport, base_url, args.calls, args.concurrency))
    setup = (
        f"{args.calls:,} calls, {args.concurrency:,} in flight, fake delay {args.delay:g} s, median of {args.trials}"
    )
    print(f"OpenAI provider transport: {setup}")
    for transport, reports in runs.items():
        cpu = statistics.median(report["cpu"] for report in reports) / args.calls
        wall = statistics.median(report["wall"] for report in reports)
        print(f"  {transport:8} CPU per call {cpu * 1e3:6.3f} ms   wall {wall:6.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transport", description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds the fake takes to answer")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--child", choices=TRANSPORTS, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    raise_open_files_limit()
    if args.child:
        report = run_event_loop(_child(args.child, args.base_url, args.calls, args.concurrency))
        sys.stdout.buffer.write(orjson.dumps(report) + b"\n")
    else:
        run_event_loop(_compare(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
