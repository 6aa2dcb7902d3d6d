"""`python -m bench`: run every benchmark, print the table, write the figures to docs/benchmarks.md."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from bench.machine import Machine
from bench.process import raise_open_files_limit
from bench.report import Row, format_table, markdown_table, update_doc
from bench.scale import FULL, QUICK, Scale
from bench.suite import run_suite
from worker.eventloop import run_event_loop

__all__ = ["main"]

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _generated(machine: Machine, rows: Sequence[Row], scale: Scale) -> str:
    parameters = ", ".join(f"{name} {value}" for name, value in asdict(scale).items())
    return "\n\n".join(
        [
            "## Latest figures",
            machine.markdown() + f"\n- code: {_commit()}",
            markdown_table(rows),
            f"Parameters: {parameters}.",
        ]
    )


def _commit() -> str:
    """The commit measured, so figures can be compared before and after a change."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" with uncommitted changes" if git("status", "--porcelain", "--", "worker", "catalog") else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small, fast run proving each row can be measured")
    parser.add_argument("--only", help="comma-separated benchmarks to run, e.g. T1,T3 (implies --no-write)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="also profile the worker in T1 and T2 with py-spy (extra runs) and write stacks and summaries to DIR",
    )
    parser.add_argument("--doc", type=Path, default=DOC, help="where the figures go (default docs/benchmarks.md)")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    only = {key.strip().upper() for key in args.only.split(",")} if args.only else None
    raise_open_files_limit()
    machine = Machine.describe()
    rows = run_event_loop(run_suite(scale, only, profile_dir=args.profile, progress=_progress))
    print(format_table(rows))
    # A quick or partial run's figures are not the project's figures.
    if not (args.quick or only or args.no_write):
        update_doc(args.doc, _generated(machine, rows, scale))
        _progress(f"wrote {args.doc}")
    return 0 if all(row.figure is not None for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
