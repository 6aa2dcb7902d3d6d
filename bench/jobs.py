"""Job bodies as the API publishes them (contract section 2), and the subjects the benchmarks use."""

from __future__ import annotations

import orjson

from worker.jetstream.topology import RESULTS_SUBJECT_PREFIX
from worker.settings import Settings

__all__ = ["JOB_SUBJECT", "RESULT_PREFIX", "job_body", "run_id"]

JOB_SUBJECT = Settings.from_env({}).subjects[0]
RESULT_PREFIX = RESULTS_SUBJECT_PREFIX


def run_id(tag: str, index: int) -> str:
    return f"bench-{tag}-{index}"


def job_body(tag: str, index: int, *, reply_to: str | None = None) -> bytes:
    """A seed-format envelope for an m5 customer on Claude Sonnet (an Anthropic model, so the fake serves it)."""
    rid = run_id(tag, index)
    envelope = {
        "id": f"job-{rid}",
        "timestamp": "2026-03-08T12:00:00.000Z",
        "version": 1,
        "subject": JOB_SUBJECT,
        "replyTo": reply_to,
        "data": {
            "type": "agent.execute",
            "runId": rid,
            "agentId": "a9f3b2c1-0d4e-4f5a-8b6c-7d8e9f0a1b2c",
            "userId": "u1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
            "tier": "m5",
            "model": "claude-sonnet-4-6",
            "systemPrompt": 'You are a Maschina research agent named "Scout". Complete the task provided.',
            "inputPayload": {"message": "Summarise the attached notes."},
            "timeoutSecs": 300,
            "maxTokens": 1024,
        },
    }
    return orjson.dumps(envelope)
