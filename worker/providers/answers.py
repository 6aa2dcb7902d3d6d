"""Malformed provider answers (docs/contract.md §4), one rule for every provider.

An answer that cannot be read as a completion — not JSON, no text, an error object inside a 200 (or
inside Ollama's stream), a usage count that is not a JSON integer from 0 to 1,000,000,000 — ends the job
`failed` with `provider_error`, not retryable: the provider did answer, and asking again would only bill
again. The usage it reported is billed when every count it reported is such an integer, else nothing is.
A provider reads its answer with `token_count` and raises `MalformedAnswerError`; `malformed_answer`
turns that into the job's `ProviderError`, and `read_answer` does both for an answer that is one JSON body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import orjson

from catalog import Usage
from worker.contract import ErrorCode
from worker.providers.base import ProviderError, ProviderReply
from worker.providers.redaction import provider_message

__all__ = ["MAX_TOKEN_COUNT", "MalformedAnswerError", "malformed_answer", "read_answer", "token_count"]

#: docs/contract.md §4: the largest usage count a provider may report (a larger one is a malformed answer).
MAX_TOKEN_COUNT = 1_000_000_000


class MalformedAnswerError(ValueError):
    """An answer that is not a completion; the text names the fault, `usage` is what it validly reported, if any.

    The text quotes of the answer only a provider error's own text, which `malformed_answer` scrubs.
    """

    def __init__(self, fault: str, *, usage: Usage | None = None) -> None:
        super().__init__(fault)
        self.fault = fault
        self.usage = usage

    def with_usage(self, usage: Usage | None) -> MalformedAnswerError:
        """The same fault, billing `usage` (the answer's usage, read before the fault was found)."""
        return MalformedAnswerError(self.fault, usage=usage)


def token_count(counts: Mapping[str, object], key: str, *, where: str, required: bool) -> int:
    """`counts[key]` when it is a JSON integer from 0 to `MAX_TOKEN_COUNT`; missing or null is 0 unless `required`.

    `type(...) is int` rather than isinstance: a JSON `true` is not a count. `where` names the object for
    the message (`usage`).
    """
    value = counts.get(key)
    if value is None and not required:
        return 0
    if type(value) is not int or not 0 <= value <= MAX_TOKEN_COUNT:
        raise MalformedAnswerError(
            f"its `{where}.{key}` is not a token count (a JSON integer from 0 to {MAX_TOKEN_COUNT:,})"
        )
    return value


def malformed_answer(provider: str, what: str, *, usage: Usage | None, secrets: Iterable[str | None]) -> ProviderError:
    """The job's error for a malformed answer: `provider_error`, not retryable, billing `usage` (None bills 0).

    `what` may quote the provider's own text, so it is scrubbed of `secrets` (key and prompt texts).
    """
    return ProviderError(
        ErrorCode.PROVIDER_ERROR, provider_message(f"{provider}: ", what, secrets), retryable=False, usage=usage
    )


def read_answer(
    provider: str,
    status: int,
    body: bytes,
    parse: Callable[[object], ProviderReply],
    *,
    shape: str,
    secrets: Iterable[str | None],
) -> ProviderReply:
    """A JSON answer body read by the provider's `parse` (e.g. `reply_from_body`), or its malformed-answer error.

    `shape` names what the body should have been (`a Messages answer`) in the message.
    """
    try:
        return parse(orjson.loads(body))
    except orjson.JSONDecodeError:
        what = f"answered HTTP {status} with a body that is not JSON"
        raise malformed_answer(provider, what, usage=None, secrets=secrets) from None
    except MalformedAnswerError as exc:
        what = f"answered HTTP {status} with a body that is not {shape}: {exc.fault}"
        raise malformed_answer(provider, what, usage=exc.usage, secrets=secrets) from None
