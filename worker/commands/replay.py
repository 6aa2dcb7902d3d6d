"""`agent-worker replay FILE...`: recorded job payloads through the worker's own door, gate, routing and billing.

Input: JSON (one job body, or an array of them) or JSONL files of seed-format envelopes or bare jobs,
or of recorded messages written by `agent-worker record`. Each job runs once
through `Door.open` and `Pipeline.run`, the code the worker runs, as a last delivery (a retryable
provider error ends `failed`, as on the worker's last delivery). Rule 3 (a stored result) does not
apply: replay stores nothing, so a repeated `runId` runs again. With WORKER_SIGNING_KEY set,
signatures are checked as on the wire: a recorded message carries its headers, a plain job body has
none and is dead-lettered `bad_signature`.

Output: stdout carries only results, one contract-shaped result JSON per line, in input order. A job
the door dead-letters gets no result (as on the wire); it is reported on stderr as one JSON line,
`{"deadLetter": {"source": "jobs.jsonl:7", "reason": "not_json", "detail": "..."}}`. Logs also go
to stderr. With `--summary` or `--compare`, stdout carries the billing table instead of the results.

Providers: the recordings shipped in the package (or `--recordings DIR`), or with `--live` the real
providers configured by the environment. `--record DIR` writes every answer, and every error that
is not retryable, in the recording format (docs/recordings.md). `--compare CATALOG` bills each job
under a second catalog too; each job's provider calls are made once and shared by both catalogs, so
both bill the same usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

from catalog import Catalog, CatalogError, default_catalog, load_catalog
from worker.door import DeadLetter, Door
from worker.logging import configure_logging
from worker.metrics import Metrics
from worker.payloads import Payload, read_payloads
from worker.pipeline import Pipeline
from worker.progress import Progress
from worker.providers.base import Provider, ProviderError, ProviderReply, ProviderRequest
from worker.providers.exchange import RecordingError
from worker.providers.recorded import RecordingStore, packaged_recordings, recorded_providers, recording_providers
from worker.providers.registry import build_providers, close_providers
from worker.quotas import MemoryUsageStore, Quotas, may_hold_reservation
from worker.recorded_jobs import RecordingLineError
from worker.report import comparison_report, summary_report
from worker.result import RunResult
from worker.settings import Settings, SettingsError

__all__ = ["Replay", "add_arguments", "run"]

EXIT_USAGE = 2
WORKER_ID = "replay"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1] if __doc__ else None
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="JSON or JSONL job payloads; - is stdin")
    parser.add_argument(
        "--catalog", type=Path, metavar="FILE", help="replay under this catalog (default: WORKER_CATALOG or built-in)"
    )
    parser.add_argument(
        "--compare", type=Path, metavar="FILE", help="also bill under this catalog; print before, after, difference"
    )
    parser.add_argument("--summary", action="store_true", help="print billed tokens per tier and model, not results")
    parser.add_argument("--live", action="store_true", help="call the real providers configured by the environment")
    parser.add_argument(
        "--recordings",
        type=Path,
        action="append",
        metavar="DIR",
        help="answer from the recordings in DIR (repeatable) instead of the packaged ones",
    )
    parser.add_argument("--record", type=Path, metavar="DIR", help="write every provider answer to DIR as a recording")
    parser.add_argument("--concurrency", type=int, default=16, metavar="N", help="jobs in flight at once (default 16)")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        catalog = _catalog(args.catalog, settings)
        other = load_catalog(args.compare) if args.compare is not None else None
        payloads = [payload for path in args.files for payload in read_payloads(path)]
        store = None if args.live else _store(args.recordings)
    except (SettingsError, CatalogError, RecordingError, RecordingLineError, OSError) as exc:
        print(f"agent-worker replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.concurrency < 1:
        print("agent-worker replay: --concurrency must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    # Logs must not mix with results on stdout.
    configure_logging(settings.log_format, stream=sys.stderr)
    providers = build_providers(settings, concurrency=args.concurrency) if store is None else recorded_providers(store)
    if args.record is not None:
        providers = recording_providers(providers, args.record)
    signing_key = settings.signing_key_bytes()
    replay = Replay(
        door=Door(signing_key=signing_key, reply_prefixes=settings.reply_prefixes, quotas=settings.quotas_on),
        catalogs=(catalog,) if other is None else (catalog, other),
        providers=providers,
        concurrency=args.concurrency,
        quotas=settings.quotas_on,
    )
    if settings.quotas_on:
        print(f"agent-worker replay: quotas on, counted in an {MemoryUsageStore.label}", file=sys.stderr)
    tabular = args.summary or other is not None
    runs: list[tuple[RunResult, ...]] = []
    started = time.monotonic()
    try:
        done = asyncio.run(_replay(replay, payloads, runs.append if tabular else _print_result))
    except KeyboardInterrupt:
        print("agent-worker replay: interrupted", file=sys.stderr)
        return 130
    elapsed = time.monotonic() - started
    tiers = [tier.name for tier in catalog.tiers_by_rank()]
    if other is not None:
        labels = (catalog.source, other.source)
        print(comparison_report([r[0] for r in runs], [r[1] for r in runs], tiers, labels))
    elif args.summary:
        print(summary_report([r[0] for r in runs], tiers))
    if sys.stderr.isatty():
        print(
            f"{len(payloads)} jobs, {len(payloads) - done} dead-lettered, in {elapsed:.2f} s "
            f"({len(payloads) / max(elapsed, 1e-9):,.0f} jobs/s)",
            file=sys.stderr,
        )
    return 0


def _print_result(results: tuple[RunResult, ...]) -> None:
    sys.stdout.buffer.write(results[0].to_json() + b"\n")


async def _replay(replay: Replay, payloads: Sequence[Payload], emit: Callable[[tuple[RunResult, ...]], None]) -> int:
    try:
        return await replay.run_all(payloads, emit)
    finally:
        await close_providers(dict(replay.providers))


def _catalog(path: Path | None, settings: Settings) -> Catalog:
    chosen = path or settings.catalog_file
    return default_catalog() if chosen is None else load_catalog(chosen)


def _store(directories: Sequence[Path] | None) -> RecordingStore:
    return packaged_recordings() if not directories else RecordingStore.load(directories)


class _CallOnce:
    """Within one job, the same call is made once and its answer shared by every catalog's pipeline.

    A retryable error is not kept: the pipeline's retry loop calls again, and that call must reach the provider.
    """

    def __init__(self, inner: Provider) -> None:
        self.name = inner.name
        self._inner = inner
        self._answers: dict[ProviderRequest, ProviderReply | ProviderError] = {}

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        answer = self._answers.get(request)
        if answer is None:
            try:
                answer = await self._inner.complete(request)
            except ProviderError as exc:
                if exc.retryable:
                    raise
                answer = exc
            self._answers[request] = answer
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    async def aclose(self) -> None:
        return None


class Replay:
    """Runs payloads through the door and one pipeline per catalog; results come back in input order."""

    def __init__(
        self,
        *,
        door: Door,
        catalogs: Sequence[Catalog],
        providers: Mapping[str, Provider],
        concurrency: int,
        quotas: bool = False,
    ) -> None:
        self.door = door
        self.catalogs = catalogs
        self.providers = providers
        self.concurrency = concurrency
        # WORKER_QUOTAS=on: each catalog's runs count against its own quotas, in memory, starting from nothing;
        # replay never reads or writes the worker's bucket.
        self._quotas = [Quotas(MemoryUsageStore(), metrics=Metrics()) if quotas else None for _ in catalogs]

    async def run_all(self, payloads: Sequence[Payload], emit: Callable[[tuple[RunResult, ...]], None]) -> int:
        """Hand each job's results (one per catalog) to `emit`, in input order; returns how many jobs had results.

        Dead letters are reported on stderr instead.
        """
        progress = Progress(len(payloads), sys.stderr)
        window: deque[asyncio.Task[tuple[RunResult, ...] | DeadLetter]] = deque()
        pending: deque[Payload] = deque()
        emitted = 0

        def finish(payload: Payload, outcome: tuple[RunResult, ...] | DeadLetter) -> None:
            nonlocal emitted
            progress.clear()
            if isinstance(outcome, DeadLetter):
                _report_dead_letter(payload, outcome)
            else:
                emit(outcome)
                emitted += 1
            progress.advance()

        try:
            for payload in payloads:
                window.append(asyncio.create_task(self.run_one(payload)))
                pending.append(payload)
                if len(window) >= self.concurrency:
                    finish(pending.popleft(), await window.popleft())
            while window:
                finish(pending.popleft(), await window.popleft())
        finally:
            for task in window:
                task.cancel()
            progress.clear()
            sys.stdout.flush()
        return emitted

    async def run_one(self, payload: Payload) -> tuple[RunResult, ...] | DeadLetter:
        verdict = self.door.open(payload.body, payload.headers)
        if isinstance(verdict, DeadLetter):
            return verdict
        shared = {name: _CallOnce(provider) for name, provider in self.providers.items()}
        results = []
        published = datetime.now(UTC)  # no JetStream timestamp: the month is the clock's
        for catalog, quotas in zip(self.catalogs, self._quotas, strict=True):
            pipeline = Pipeline(catalog=catalog, providers=shared, worker_id=WORKER_ID, quotas=quotas)
            result = await pipeline.run(verdict, attempt=1, final=True, published=published)
            assert isinstance(result, RunResult)  # a last delivery always ends in a result
            if quotas is not None and may_hold_reservation(result, attempt=1):
                # Nothing is stored by replay: the result in hand is the run's bill.
                await quotas.settle_stored(result.user_id, published, result.run_id, result.to_json())
            results.append(result)
        return tuple(results)


def _report_dead_letter(payload: Payload, dead: DeadLetter) -> None:
    record = {"deadLetter": {"source": payload.source, "reason": dead.reason.value, "detail": dead.detail}}
    sys.stderr.buffer.write(orjson.dumps(record) + b"\n")
    sys.stderr.flush()
