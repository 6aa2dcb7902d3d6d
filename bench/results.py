"""Stored results for the reprice benchmark: the contract's result shape over a mix of tiers, models and statuses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from nats.aio.client import Client

from bench.jobs import run_id
from worker.contract import MSG_ID_HEADER, RESULTS_SUBJECT_PREFIX

__all__ = ["publish_results", "result_body"]

_ERROR = {"retryable": False}
# (tier, requestedModel, model, multiplier, status, error code): what a month of traffic looks like, roughly.
_KINDS: tuple[tuple[str, str | None, str | None, str, str, str | None], ...] = (
    ("m5", "claude-sonnet-4-6", "claude-sonnet-4-6", "3", "completed", None),
    ("m5", None, "claude-sonnet-4-6", "3", "completed", None),
    ("m1", None, "claude-haiku-4-5-20251001", "1", "completed", None),
    ("m10", "claude-opus-4-6", "claude-opus-4-6", "15", "completed", None),
    ("teams", None, "claude-sonnet-4-6", "3", "failed", "provider_error"),
    ("access", None, "ollama/llama3.2", "0", "completed", None),
    ("m1", "claude-opus-4-6", None, "0", "rejected", "model_not_allowed"),
    ("enterprise", None, "claude-opus-4-6", "15", "timed_out", "timeout"),
)


def result_body(tag: str, index: int) -> bytes:
    """One stored result, as the worker writes it; usage varies with `index`."""
    tier, requested, model, multiplier, status, code = _KINDS[index % len(_KINDS)]
    rid = run_id(tag, index)
    ran = model is not None
    raw_in, raw_out, cached = (800 + index % 997, 200 + index % 331, index % 7) if ran else (0, 0, 0)
    factor = int(multiplier)
    result: dict[str, Any] = {
        "version": 1,
        "type": "agent.execute.result",
        "jobId": f"job-{rid}",
        "runId": rid,
        "agentId": "a9f3b2c1-0d4e-4f5a-8b6c-7d8e9f0a1b2c",
        "userId": "u1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        "tier": tier,
        "status": status,
        "requestedModel": requested,
        "model": model,
        "provider": None if model is None else ("ollama" if model.startswith("ollama/") else "anthropic"),
        "outputPayload": {"text": "The notes cover three themes. " * 8} if status == "completed" else None,
        "stopReason": "end_turn" if status == "completed" else None,
        "usage": {
            "inputTokens": raw_in,
            "outputTokens": raw_out,
            "cacheCreationInputTokens": 0,
            "cacheReadInputTokens": cached,
        },
        "billing": {
            "multiplier": multiplier,
            "billedInputTokens": (raw_in + cached) * factor,
            "billedOutputTokens": raw_out * factor,
            "billedTokens": (raw_in + cached + raw_out) * factor,
        },
        "error": None if code is None else {"code": code, "message": "…", **_ERROR},
        "attempt": 1,
        "workerId": "bench-worker",
        "startedAt": "2026-03-08T12:00:00.120Z",
        "finishedAt": "2026-03-08T12:00:04.530Z",
        "durationMs": 4410,
    }
    return orjson.dumps(result)


def _bodies(tag: str, count: int) -> Iterator[tuple[str, bytes]]:
    for index in range(count):
        yield RESULTS_SUBJECT_PREFIX + run_id(tag, index), result_body(tag, index)


async def publish_results(nc: Client, tag: str, count: int, *, chunk: int = 2000) -> None:
    """Plain NATS publishes into the results stream (one subject per run, as the worker stores them), in chunks."""
    for position, (subject, body) in enumerate(_bodies(tag, count), start=1):
        await nc.publish(subject, body, headers={MSG_ID_HEADER: subject.rsplit(".", 1)[1]})
        if position % chunk == 0:
            await nc.flush()
    await nc.flush()
