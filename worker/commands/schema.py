"""`agent-worker schema`: the JSON Schema of the job as published and of the result (docs/contract.md §2, §6)."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from worker.result import RunResult
from worker.wire import job_body_schema

__all__ = ["add_arguments", "run", "schemas"]


def schemas() -> dict[str, dict[str, Any]]:
    """Both schemas in camelCase: the job body (an envelope or a bare job) and the result as serialised."""
    return {
        "job": job_body_schema(),
        "result": RunResult.model_json_schema(by_alias=True, mode="serialization"),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--which",
        choices=("job", "result"),
        help='print only this schema (default: both, as {"job": ..., "result": ...})',
    )


def run(args: argparse.Namespace) -> int:
    documents = schemas()
    chosen: Any = documents if args.which is None else documents[args.which]
    print(orjson.dumps(chosen, option=orjson.OPT_INDENT_2).decode())
    return 0
