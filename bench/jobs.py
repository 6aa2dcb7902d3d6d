"""Job bodies as the API publishes them (docs/contract.md §2), varied per benchmark."""

from __future__ import annotations

import orjson

from testkit.jobs import example_envelope, example_job

__all__ = ["QUOTAS_ON", "job_body", "run_id", "spread_user"]

QUOTAS_ON = {"WORKER_QUOTAS": "on"}
"""A replica's extra setting for the quota rows: the built-in quotas, the usage bucket on the same server."""


def run_id(tag: str, index: int) -> str:
    return f"bench-{tag}-{index}"


def spread_user(index: int) -> str:
    """One of a hundred users, so that with quotas on the jobs share a hundred usage keys, as many customers do."""
    return f"bench-user-{index % 100}"


def job_body(
    tag: str,
    index: int,
    *,
    reply_to: str | None = None,
    user: str | None = None,
    tier: str | None = None,
    model: str | None = None,
) -> bytes:
    """A seed-format envelope for an m5 customer on Claude Sonnet (an Anthropic model, so the fake serves it).

    `user`, `tier` and `model` replace the example's userId, tier and model (`BenchProvider.model`).
    """
    rid = run_id(tag, index)
    fields: dict[str, object] = {"runId": rid, "maxTokens": 1024}
    if user is not None:
        fields["userId"] = user
    if tier is not None:
        fields["tier"] = tier
    if model is not None:
        fields["model"] = model
    job = example_job(**fields)
    return orjson.dumps(example_envelope(job, job_id=f"job-{rid}", reply_to=reply_to))
