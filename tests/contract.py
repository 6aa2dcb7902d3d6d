"""The contract's field names (sections 2 and 6), written out once for every suite that checks a body's keys.

Copied from docs/contract.md, not derived from the code, so that the tests hold the code to the contract.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BILLING_FIELDS", "JOB_FIELDS", "RESULT_FIELDS", "USAGE_FIELDS"]

JOB_FIELDS: Final = frozenset(
    {
        "type",
        "runId",
        "agentId",
        "userId",
        "tier",
        "model",
        "systemPrompt",
        "inputPayload",
        "timeoutSecs",
        "maxTokens",
    }
)
"""The keys of a job's `data` (docs/contract.md §2)."""

RESULT_FIELDS: Final = frozenset(
    {
        "version",
        "type",
        "jobId",
        "runId",
        "agentId",
        "userId",
        "tier",
        "status",
        "requestedModel",
        "model",
        "provider",
        "outputPayload",
        "stopReason",
        "usage",
        "billing",
        "error",
        "attempt",
        "workerId",
        "startedAt",
        "finishedAt",
        "durationMs",
    }
)
"""The keys of a result message, every one always written (docs/contract.md §6)."""

USAGE_FIELDS: Final = frozenset({"inputTokens", "outputTokens", "cacheCreationInputTokens", "cacheReadInputTokens"})
"""The keys of a result's `usage`."""

BILLING_FIELDS: Final = frozenset({"multiplier", "billedInputTokens", "billedOutputTokens", "billedTokens"})
"""The keys of a result's `billing`."""
