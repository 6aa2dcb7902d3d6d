"""Job bodies as the API publishes them (docs/contract.md §2): the contract's example job, varied rather than rewritten.

`example_job()` / `example_envelope()` build from keyword fields; `job_data()` / `envelope()` apply a dict of
changes in which `MISSING` removes a field (the door's tests); `encode()` writes bytes as a publisher would.
"""

from __future__ import annotations

import json
from typing import Any, Final

from worker.contract import JOB_SUBJECT

__all__ = [
    "JOB_ID",
    "MISSING",
    "REPLY_TO",
    "RUN_ID",
    "encode",
    "envelope",
    "example_envelope",
    "example_job",
    "job_data",
]

JOB_ID = "0b5a3c8e-7f0e-4a4e-9d1b-2f0f6a1e9c11"
RUN_ID = "7c1e0d4a-3b7a-4c55-8a0e-5e2f1d9b6a70"
REPLY_TO = "_INBOX.api-7.Qx3v9k"

_EXAMPLE_JOB: Final[dict[str, Any]] = {
    "type": "agent.execute",
    "runId": RUN_ID,
    "agentId": "a9f3b2c1-0d4e-4f5a-8b6c-7d8e9f0a1b2c",
    "userId": "u1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    "tier": "m5",
    "model": "claude-sonnet-4-6",
    "systemPrompt": 'You are a Maschina research agent named "Scout". Complete the task provided.',
    "inputPayload": {"message": "Summarise the attached notes."},
    "timeoutSecs": 300,
    "maxTokens": 4096,
}


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""A field value meaning: leave the field out."""


def example_job(**fields: Any) -> dict[str, Any]:
    """The contract's example job `data`, with `fields` (camelCase wire names) added or replaced."""
    return {**_EXAMPLE_JOB, "inputPayload": dict(_EXAMPLE_JOB["inputPayload"]), **fields}


def example_envelope(data: Any, *, job_id: str = JOB_ID, reply_to: str | None = REPLY_TO) -> dict[str, Any]:
    """The contract's event envelope around `data`, as the API's publisher writes it."""
    return {
        "id": job_id,
        "timestamp": "2026-03-08T12:00:00.000Z",
        "version": 1,
        "subject": JOB_SUBJECT,
        "replyTo": reply_to,
        "data": data,
    }


def _changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in changes.items():
        if value is MISSING:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def job_data(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The contract's example job, with `changes` applied (a `MISSING` value removes the field)."""
    return _changed(example_job(), changes or {})


def envelope(data: Any = None, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The contract's example envelope around `data` (default: the example job), with `changes` applied."""
    return _changed(example_envelope(job_data() if data is None else data), changes or {})


def encode(value: Any) -> bytes:
    """Bytes as a publisher would send them; the stdlib writes integers of any size (orjson stops at 64 bits)."""
    return json.dumps(value, ensure_ascii=False).encode()
