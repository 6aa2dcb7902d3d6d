"""The Chat Completions answer body read into a `ProviderReply`, without the openai SDK.

The live provider (`worker.providers.openai`) and the recorded one (`worker.providers.recorded`) both read
answers here, so a replayed answer bills exactly as the live one did, and replay never pays the SDK's import.

Usage (docs/contract.md §5): `prompt_tokens` already holds `prompt_tokens_details.cached_tokens` and
`completion_tokens` already holds `completion_tokens_details.reasoning_tokens`, so the reply's usage is
`input_tokens` = prompt − cached, `cache_read_input_tokens` = cached, `output_tokens` = completion:
each token counted once. Absent or null `*_details` mean 0.
"""

from __future__ import annotations

from typing import Any

from catalog import Usage
from worker.providers.answers import MalformedAnswerError, token_count
from worker.providers.base import ProviderReply, model_name
from worker.providers.messages import error_detail

__all__ = ["FINISH_REASONS", "reply_from_completion"]

#: `finish_reason` → the stop reason in results (docs/contract.md §4); anything else passes through.
FINISH_REASONS = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}
#: Finish reasons that may come with no text at all: a reasoning model that spent its whole budget thinking
#: (`length`, content `""` or null) and a filtered answer (`content_filter`).
_TEXTLESS = frozenset({"length", "content_filter"})
_DETAILS = ("prompt_tokens_details", "completion_tokens_details")


def reply_from_completion(body: object) -> ProviderReply:
    """A Chat Completions answer, as decoded from its JSON, as the pipeline sees it.

    Raises `MalformedAnswerError` naming the fault (of the body, only an error's own text), with the answer's
    usage attached when every count in it was valid, since those tokens were spent and are billed.
    """
    if not isinstance(body, dict):
        raise MalformedAnswerError("it is not a JSON object")
    # OpenAI's `{"error": {...}}`, or the `{"object": "error", ...}` of OpenAI-compatible servers such as vLLM.
    if "error" in body or body.get("object") == "error":
        raise MalformedAnswerError(f"it is an error ({error_detail(body) or 'no detail'})")
    usage = _usage_of(body.get("usage"))
    try:
        text, finish_reason = _first_choice(body.get("choices"))
    except MalformedAnswerError as exc:
        raise exc.with_usage(usage) from None
    return ProviderReply(
        text=text,
        stop_reason=None if finish_reason is None else FINISH_REASONS.get(finish_reason, finish_reason),
        usage=usage,
        model=model_name(body.get("model")),
    )


def _usage_of(usage: object) -> Usage:
    """The `usage` object as the result's usage; every count it reports must be valid (else nothing is billed)."""
    if not isinstance(usage, dict):
        raise MalformedAnswerError("it has no `usage`")
    prompt = token_count(usage, "prompt_tokens", where="usage", required=True)
    completion = token_count(usage, "completion_tokens", where="usage", required=True)
    token_count(usage, "total_tokens", where="usage", required=False)
    details = {name: _details(usage, name) for name in _DETAILS}
    cached = details["prompt_tokens_details"].get("cached_tokens", 0)
    reasoning = details["completion_tokens_details"].get("reasoning_tokens", 0)
    # Both are parts of their totals: more than the whole would make the uncached input negative.
    if cached > prompt:
        raise MalformedAnswerError("its `usage.prompt_tokens_details.cached_tokens` exceeds `prompt_tokens`")
    if reasoning > completion:
        raise MalformedAnswerError("its `usage.completion_tokens_details.reasoning_tokens` exceeds `completion_tokens`")
    return Usage(input_tokens=prompt - cached, output_tokens=completion, cache_read_input_tokens=cached)


def _details(usage: dict[str, Any], name: str) -> dict[str, int]:
    """A `*_details` object's counts (audio, cached, reasoning, predictions); absent or null is none."""
    details = usage.get(name)
    if details is None:
        return {}
    if not isinstance(details, dict):
        raise MalformedAnswerError(f"its `usage.{name}` is not an object")
    return {key: token_count(details, key, where=f"usage.{name}", required=False) for key in details}


def _first_choice(choices: object) -> tuple[str, str | None]:
    """The text and `finish_reason` of the one choice asked for (`n` is never sent, so it is the first)."""
    if not isinstance(choices, list) or not choices:
        raise MalformedAnswerError("it has no `choices`")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise MalformedAnswerError("its first choice is not an object")
    finish_reason = choice.get("finish_reason")
    if finish_reason is not None and not isinstance(finish_reason, str):
        raise MalformedAnswerError("its `finish_reason` is not a string")
    message = choice.get("message")
    if not isinstance(message, dict):
        raise MalformedAnswerError("its first choice has no `message`")
    content, refusal = message.get("content"), message.get("refusal")
    if isinstance(content, str):
        return content, finish_reason
    if content is not None:
        raise MalformedAnswerError("its `message.content` is not a string")
    # The model declined in words of its own: those words are the answer.
    if isinstance(refusal, str):
        return refusal, finish_reason
    if finish_reason in _TEXTLESS:
        return "", finish_reason
    raise MalformedAnswerError("its message has no text")
