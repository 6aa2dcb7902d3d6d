"""`agent-worker demo`: the real worker on an embedded nats-server, fed the sample jobs, and the bill printed.

Needs nothing but the install: nats-server comes from the environment (`find_nats_server`), the
provider answers from the recordings shipped in the package, and no network or key is used. The
sample jobs (`worker/samples/demo.jsonl`) are published through JetStream with a plain NATS client,
exactly as the API publishes them; the demo then waits for each one's stored result (or, for a
malformed job, its dead letter) and prints one row per job and the totals per tier.

Quotas are on (docs/contract.md §9), in the real key-value bucket on the embedded server: before publishing, the demo
starts one sample user's month close to its quota (`QUOTA_USER`), so one of its runs completes and the other
is refused with `quota_exceeded`.

The nats-server and its temporary store are removed on every exit path: success, failure, Ctrl-C
or SIGTERM. `--keep-running` leaves both up after the table, until Ctrl-C, to poke at with the
`nats` CLI or to record from (`--publish-every SECS` publishes the jobs again meanwhile, as new
runs of new users). `--live` answers from the real providers configured by the environment instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import logging
import signal
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg

from catalog import default_catalog
from catalog.quota import MonthlyUsage, usage_key, usage_month
from worker.contract import (
    DLQ_REASON_HEADER,
    DLQ_STREAM,
    DLQ_STREAM_SEQ_HEADER,
    DLQ_SUBJECT,
    JOB_SUBJECT,
    RESULTS_SUBJECT_PREFIX,
)
from worker.door import DeadLetter, Door
from worker.embedded import NatsServer, NatsServerNotFoundError
from worker.logging import configure_logging
from worker.payloads import Payload, read_payloads
from worker.providers.base import Provider
from worker.providers.exchange import RecordingError
from worker.providers.recorded import RecordingStore, packaged_recordings, recorded_providers, recording_providers
from worker.providers.registry import build_providers, close_providers
from worker.report import DeadLetterRow, results_table, tier_totals
from worker.result import RunResult
from worker.service import Worker
from worker.settings import Settings, SettingsError

__all__ = ["SAMPLES", "add_arguments", "run"]

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "demo.jsonl"
WORKER_ID = "demo-worker"
# The sample user near its quota (worker/samples/demo.jsonl): 2,000 tokens left of m1's 500,000, room for the
# most possible bill of one of its two runs (1,111) and not of the other (4,190).
QUOTA_USER = "user-demo-quota"
QUOTA_USER_BILLED = 498_000

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--live", action="store_true", help="call the real providers configured by the environment")
    parser.add_argument("--record", type=Path, metavar="DIR", help="write every provider answer to DIR as a recording")
    parser.add_argument(
        "--jobs", type=Path, default=SAMPLES, metavar="FILE", help="job payloads to publish (JSON or JSONL)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECS", help="how long to wait for every result (default 60)"
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="after the table, keep nats-server and the worker up until Ctrl-C"
    )
    parser.add_argument(
        "--publish-every",
        type=float,
        metavar="SECS",
        help="with --keep-running: publish the jobs again every SECS seconds as new runs (traffic to record)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        # With --live the environment's provider settings answer, else the recordings shipped in the package.
        answers: Settings | RecordingStore = Settings.from_env() if args.live else packaged_recordings()
        payloads = list(read_payloads(args.jobs))
        server = NatsServer()
    except (SettingsError, RecordingError, OSError, NatsServerNotFoundError) as exc:
        print(f"agent-worker demo: {exc}", file=sys.stderr)
        return EXIT_FAILED
    # Each line as soon as it is printed, also into a pipe: a watcher sees the demo's progress as it happens.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    # Errors only, and on stderr: the table on stdout is the demo's output, and the dead letters in it are expected.
    configure_logging("console", level=logging.ERROR, stream=sys.stderr)
    try:
        server.start()
        return asyncio.run(_interruptible(_demo(server, answers, payloads, args)))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        server.close()


async def _interruptible(main: Coroutine[Any, Any, int]) -> int:
    """Run `main`; SIGINT or SIGTERM cancels it, so every `finally` below runs before the process exits."""
    task = asyncio.create_task(main)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        print("agent-worker demo: interrupted; stopping the worker and nats-server", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


@dataclass(slots=True)
class _Collected:
    """What came back: results by runId, dead-letter reasons by the job's stream sequence, replyTo copies."""

    expected: int
    expected_replies: int
    results: dict[str, RunResult] = field(default_factory=dict)
    dead: dict[int, str] = field(default_factory=dict)
    replies: int = 0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self) -> None:
        # A replyTo copy is sent after its result is stored, so the copies are awaited too.
        if len(self.results) + len(self.dead) >= self.expected and self.replies >= self.expected_replies:
            self.all_in.set()


def _providers(answers: Settings | RecordingStore, record: Path | None) -> tuple[dict[str, Provider], str]:
    if isinstance(answers, RecordingStore):
        providers, what = recorded_providers(answers), f"recorded providers ({len(answers)} recordings)"
    else:
        providers, what = build_providers(answers), "live providers from the environment"
    if record is not None:
        providers, what = recording_providers(providers, record), f"{what}, recording to {record}"
    return providers, what


async def _demo(
    server: NatsServer, answers: Settings | RecordingStore, payloads: list[Payload], args: argparse.Namespace
) -> int:
    settings = Settings.from_env(
        {},
        nats_url=(server.url,),
        http_port=0,
        worker_id=WORKER_ID,
        shutdown_grace_secs=1.0,  # on Ctrl-C a stuck provider call is abandoned quickly; the job is thrown away anyway
        quotas="on",  # in the real bucket on the embedded server, as a fleet runs them
    )
    providers, what = _providers(answers, args.record)
    catalog = default_catalog()
    worker = Worker(settings, providers=providers, catalog=catalog)
    nc = await nats.connect(server.url, name="agent-worker-demo")
    try:
        print(f"nats-server {server.url} (JetStream, temporary store {server.store_dir})")
        print(f"worker {WORKER_ID!r} with the {catalog.source} catalog and {what}")
        collected = await _subscribe(nc, payloads, Door(reply_prefixes=settings.reply_prefixes))
        await worker.start()
        print(await _near_quota(nc, settings))
        seqs = await _publish(nc, payloads)
        print(f"published {len(payloads)} jobs from {args.jobs} to {JOB_SUBJECT}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collected.all_in.wait(), args.timeout)
        await nc.flush()
        rows = _rows(payloads, seqs, collected)
        print(
            f"{len(collected.results)} results stored in {settings.results_stream}, "
            f"{len(collected.dead)} dead-lettered to {DLQ_STREAM}, {collected.replies} copies sent to replyTo inboxes\n"
        )
        print(results_table(rows))
        print()
        print(tier_totals(list(collected.results.values()), [t.name for t in catalog.tiers_by_rank()]))
        missing = collected.expected - len(collected.results) - len(collected.dead)
        if missing:
            print(f"\n{missing} jobs had no result or dead letter after {args.timeout:g} s", file=sys.stderr)
            return EXIT_FAILED
        if args.keep_running:
            print(f"\nStill running at {server.url}; press Ctrl-C to stop.", flush=True)
            with contextlib.suppress(asyncio.CancelledError):  # Ctrl-C is how --keep-running is meant to end
                if args.publish_every:
                    await _publish_again(nc, payloads, args.publish_every)
                await asyncio.Event().wait()
        return 0
    finally:
        await worker.stop()
        await nc.close()
        await close_providers(providers)


async def _near_quota(nc: Client, settings: Settings) -> str:
    """Start the quota sample user's month close to its tier's quota, so one of its runs fits and one does not."""
    month = usage_month(datetime.now(UTC))
    kv = await nc.jetstream().key_value(settings.usage_bucket)
    await kv.put(usage_key(QUOTA_USER, month), MonthlyUsage(QUOTA_USER_BILLED, {}).to_json())
    return (
        f"quotas on, in the key-value bucket {settings.usage_bucket}: {QUOTA_USER} starts {month} at "
        f"{QUOTA_USER_BILLED:,} billed tokens of its m1 quota of {default_catalog().tiers['m1'].monthly_quota:,}"
    )


async def _subscribe(nc: Client, payloads: list[Payload], door: Door) -> _Collected:
    """Watch results, dead letters and replyTo copies; the door says how many copies to expect."""
    verdicts = [door.open(payload.body) for payload in payloads]
    runs = [v.ref for v in verdicts if not isinstance(v, DeadLetter)]
    inboxes = [ref.reply_to for ref in runs if ref.reply_to is not None]
    # One stored result per runId: a job published twice gets its stored result re-sent, not a second one.
    collected = _Collected(len(verdicts) - len(runs) + len({ref.run_id for ref in runs}), len(inboxes))

    async def on_result(msg: Msg) -> None:
        result = RunResult.from_json(msg.data)
        collected.results[result.run_id] = result
        collected.check()

    async def on_dead_letter(msg: Msg) -> None:
        headers = msg.headers or {}
        collected.dead[int(headers.get(DLQ_STREAM_SEQ_HEADER, "0"))] = headers.get(DLQ_REASON_HEADER, "?")
        collected.check()

    async def on_reply(_msg: Msg) -> None:
        collected.replies += 1
        collected.check()

    await nc.subscribe(RESULTS_SUBJECT_PREFIX + ">", cb=on_result)
    await nc.subscribe(DLQ_SUBJECT, cb=on_dead_letter)
    for inbox in set(inboxes):
        await nc.subscribe(inbox, cb=on_reply)
    await nc.flush()
    return collected


async def _publish(nc: Client, payloads: list[Payload]) -> list[int]:
    """Publish each body as the API does (JetStream, body unchanged); returns each job's stream sequence."""
    js = nc.jetstream()
    return [(await js.publish(JOB_SUBJECT, payload.body)).seq for payload in payloads]


async def _publish_again(nc: Client, payloads: list[Payload], every: float) -> None:
    """Every `every` seconds, the same jobs as new runs of new users (`-r<round>` on runId, envelope id, userId).

    New users, so that each round starts every user's monthly quota afresh: a quota decision then depends on
    the round's jobs alone, and a recording of a round replays with the bills the worker stored.
    """
    for round_ in itertools.count(1):
        await asyncio.sleep(every)
        await _publish(nc, [Payload(_as_new_run(p.body, f"r{round_}"), p.source) for p in payloads])
        print(f"published the {len(payloads)} jobs again as new runs (-r{round_})", flush=True)


def _as_new_run(body: bytes, suffix: str) -> bytes:
    """The body with `-<suffix>` added to its runId, envelope id and userId; without a usable runId, as it is."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(document, dict):
        return body
    data = document.get("data")
    job = data if isinstance(data, dict) else document
    if not isinstance(job.get("runId"), str):
        return body
    job["runId"] = f"{job['runId']}-{suffix}"
    if isinstance(job.get("userId"), str):
        job["userId"] = f"{job['userId']}-{suffix}"
    if job is not document and isinstance(document.get("id"), str):
        document["id"] = f"{document['id']}-{suffix}"
    return orjson.dumps(document)


def _rows(payloads: list[Payload], seqs: list[int], collected: _Collected) -> list[RunResult | DeadLetterRow]:
    rows: list[RunResult | DeadLetterRow] = []
    for payload, seq in zip(payloads, seqs, strict=True):
        run_id = _run_id(payload.body)
        if seq in collected.dead:
            rows.append(DeadLetterRow(run_id or Path(payload.source).name, collected.dead[seq]))
        elif run_id is not None and run_id in collected.results:
            rows.append(collected.results[run_id])
    return rows


def _run_id(body: bytes) -> str | None:
    """The job's runId as written, for labelling rows; None when the body does not say."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    job = document.get("data") if isinstance(document, dict) and isinstance(document.get("data"), dict) else document
    run_id = job.get("runId") if isinstance(job, dict) else None
    return run_id if isinstance(run_id, str) else None
