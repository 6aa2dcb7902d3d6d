"""Job bodies as the API publishes them (contract section 2), and the subjects the benchmarks use."""

from __future__ import annotations

import orjson

from worker.jetstream.topology import RESULTS_SUBJECT_PREFIX
from worker.settings import Settings
from worker.testing.jobs import example_envelope, example_job

__all__ = ["JOB_SUBJECT", "RESULT_PREFIX", "job_body", "run_id"]

JOB_SUBJECT = Settings.from_env({}).subjects[0]
RESULT_PREFIX = RESULTS_SUBJECT_PREFIX


def run_id(tag: str, index: int) -> str:
    return f"bench-{tag}-{index}"


def job_body(tag: str, index: int, *, reply_to: str | None = None) -> bytes:
    """A seed-format envelope for an m5 customer on Claude Sonnet (an Anthropic model, so the fake serves it)."""
    rid = run_id(tag, index)
    job = example_job(runId=rid, maxTokens=1024)
    return orjson.dumps(example_envelope(job, job_id=f"job-{rid}", reply_to=reply_to))
