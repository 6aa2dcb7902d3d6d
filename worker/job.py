"""A job as the pipeline sees it, after the door has read and validated it (docs/contract.md §2)."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.quote import clipped

__all__ = ["Job", "RunRef"]


@dataclass(frozen=True, slots=True)
class RunRef:
    """What identifies a run and is echoed into its result, known even when the job is rejected.

    Each field is `None` when the job did not carry a usable value: `agent_id`, `user_id`, `tier`
    are the job's when they are strings; `requested_model` when it is a non-empty string;
    `reply_to` only when it is a valid reply subject (docs/contract.md §2, rule 4).
    """

    run_id: str
    job_id: str | None
    agent_id: str | None
    user_id: str | None
    tier: str | None
    requested_model: str | None
    reply_to: str | None

    def log_fields(self) -> dict[str, str | None]:
        """The fields every log line of the run carries; the job's own strings cut to 64 characters
        (docs/contract.md §6).

        The run id is whole: the door holds it to 128 characters of a subject token, and it is the key to the run.
        """
        return {
            "runId": self.run_id,
            "jobId": clipped(self.job_id),
            "tier": clipped(self.tier),
            "model": clipped(self.requested_model),
        }


@dataclass(frozen=True, slots=True)
class Job:
    """A job that passed validation; the gate has not seen it yet."""

    ref: RunRef
    agent_id: str
    user_id: str
    tier: str
    system_prompt: str | None
    user_message: str
    timeout_secs: int
    max_tokens: int
    """As asked (default 4096); the pipeline lowers it to the model's output cap after the gate."""
