"""Builders of job bodies for the door's tests: a valid seed-format job, changed one field at a time."""

from __future__ import annotations

import json
from typing import Any, Final

from worker.testing.jobs import example_envelope, example_job

__all__ = ["JOB_ID", "MISSING", "REPLY_TO", "RUN_ID", "encode", "envelope", "job_data"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""A field value meaning: leave the field out."""

JOB_ID = "0b5a3c8e-7f0e-4a4e-9d1b-2f0f6a1e9c11"
RUN_ID = "7c1e0d4a-3b7a-4c55-8a0e-5e2f1d9b6a70"
REPLY_TO = "_INBOX.api-7.Qx3v9k"

_DATA: Final[dict[str, Any]] = example_job(runId=RUN_ID)


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
    return _changed(_DATA, changes or {})


def envelope(data: Any = None, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The contract's example envelope around `data` (default: the example job)."""
    base = example_envelope(job_data() if data is None else data, job_id=JOB_ID, reply_to=REPLY_TO)
    return _changed(base, changes or {})


def encode(value: Any) -> bytes:
    """Bytes as a publisher would send them; the stdlib writes integers of any size (orjson stops at 64 bits)."""
    return json.dumps(value, ensure_ascii=False).encode()
