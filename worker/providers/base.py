"""What every provider is to the pipeline: one model call in, a reply or a classified error out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from catalog import Usage
from worker.contract import ErrorCode

__all__ = ["Provider", "ProviderError", "ProviderReply", "ProviderRequest", "model_name"]


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    model: str
    """The provider's own name for the model (catalog `ModelSpec.provider_model`)."""
    system_prompt: str | None
    user_message: str
    max_tokens: int


@dataclass(frozen=True, slots=True)
class ProviderReply:
    text: str
    stop_reason: str | None
    usage: Usage
    model: str | None = None
    """The model that answered, as the provider names it, when it says (traces show it; the result does not)."""


def model_name(value: object) -> str | None:
    """The model an answer names, when it is a plausible name (it only goes on a trace span)."""
    return value if isinstance(value, str) and 0 < len(value) <= 256 else None


class ProviderError(Exception):
    """A failed call, already classified by the contract's error table.

    `retry_after` is the provider's own hint in seconds, when it gave one; `usage` is what the
    provider reported before failing, if anything (it is billed).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.usage = usage


class Provider(Protocol):
    """One call, one attempt: no retries inside (the shared retry policy wraps it)."""

    name: str

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        """Make one model call; raise `ProviderError` for every failure the provider reports."""
        ...

    async def aclose(self) -> None: ...
