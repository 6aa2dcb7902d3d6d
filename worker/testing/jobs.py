"""The contract's example job (section 2), for tests, benchmarks and fault runs to vary rather than rewrite."""

from __future__ import annotations

from typing import Any

__all__ = ["JOB_SUBJECT", "example_envelope", "example_job"]

JOB_SUBJECT = "maschina.jobs.agent.agent.execute"

_EXAMPLE_JOB: dict[str, Any] = {
    "type": "agent.execute",
    "runId": "7c1e0d4a-3b7a-4c55-8a0e-5e2f1d9b6a70",
    "agentId": "a9f3b2c1-0d4e-4f5a-8b6c-7d8e9f0a1b2c",
    "userId": "u1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    "tier": "m5",
    "model": "claude-sonnet-4-6",
    "systemPrompt": 'You are a Maschina research agent named "Scout". Complete the task provided.',
    "inputPayload": {"message": "Summarise the attached notes."},
    "timeoutSecs": 300,
    "maxTokens": 4096,
}


def example_job(**fields: Any) -> dict[str, Any]:
    """The contract's example job `data`, with `fields` (camelCase wire names) added or replaced."""
    return {**_EXAMPLE_JOB, "inputPayload": dict(_EXAMPLE_JOB["inputPayload"]), **fields}


def example_envelope(data: Any, *, job_id: str, reply_to: str | None) -> dict[str, Any]:
    """The contract's event envelope around `data`, as the API's publisher writes it."""
    return {
        "id": job_id,
        "timestamp": "2026-03-08T12:00:00.000Z",
        "version": 1,
        "subject": JOB_SUBJECT,
        "replyTo": reply_to,
        "data": data,
    }
