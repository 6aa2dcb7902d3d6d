"""The Messages API's answer body read into a `ProviderReply`, without the anthropic SDK.

The live provider (`worker.providers.anthropic`) and the recorded one (`worker.providers.recorded`) both
read answers here, so a replayed answer bills exactly as the live one did; replay and demo never pay the
SDK's import (over a second of CPU).
"""

from __future__ import annotations

from catalog import Usage
from worker.providers.answers import MalformedAnswerError, token_count
from worker.providers.base import ProviderReply, model_name

__all__ = ["MalformedAnswerError", "error_detail", "reply_from_body"]


def reply_from_body(body: object) -> ProviderReply:
    """A Messages API answer, as decoded from its JSON, as the pipeline sees it.

    Only the fields the reply needs are checked; any fault of their shape raises `MalformedAnswerError`,
    which carries the answer's usage when every count in it is valid (docs/contract.md §4: that usage is billed).
    """
    if not isinstance(body, dict):
        raise MalformedAnswerError("it is not a JSON object")
    kind = body.get("type")
    if kind == "error":
        raise MalformedAnswerError(f"it is an error ({error_detail(body) or 'no detail'})")
    usage = _usage_of(body.get("usage"))
    try:
        if kind != "message":
            raise MalformedAnswerError('its `type` is not "message"')
        stop_reason = body.get("stop_reason")
        if stop_reason is not None and not isinstance(stop_reason, str):
            raise MalformedAnswerError("its `stop_reason` is not a string")
        text = _text_of(body.get("content"), stop_reason)
    except MalformedAnswerError as exc:
        raise exc.with_usage(usage) from None
    return ProviderReply(text=text, stop_reason=stop_reason, usage=usage, model=model_name(body.get("model")))


def _usage_of(usage: object) -> Usage:
    """The answer's usage; a fault of it raises `MalformedAnswerError` without usage (nothing is billed)."""
    if not isinstance(usage, dict):
        raise MalformedAnswerError("it has no `usage`")
    return Usage(
        input_tokens=token_count(usage, "input_tokens", where="usage", required=True),
        output_tokens=token_count(usage, "output_tokens", where="usage", required=True),
        # The cache fields may be missing or null, meaning none.
        cache_creation_input_tokens=token_count(usage, "cache_creation_input_tokens", where="usage", required=False),
        cache_read_input_tokens=token_count(usage, "cache_read_input_tokens", where="usage", required=False),
    )


#: Stop reasons that may come with no text block at all: a budget spent thinking (`max_tokens`) and a refusal.
_TEXTLESS = frozenset({"max_tokens", "refusal"})


def _text_of(content: object, stop_reason: str | None) -> str:
    """The text blocks joined; other blocks (thinking, tool use) are not part of the reply.

    An answer with no text block at all is no completion (docs/contract.md §4), unless its stop reason says why.
    """
    if not isinstance(content, list):
        raise MalformedAnswerError("its `content` is not a list")
    texts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            raise MalformedAnswerError("a `content` block is not an object")
        if block.get("type") == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise MalformedAnswerError("a text block has no `text`")
            texts.append(text)
    if not texts and stop_reason not in _TEXTLESS:
        raise MalformedAnswerError("it has no text block")
    return "".join(texts)


def error_detail(body: object) -> str:
    """`<error type>: <message>` from the API's error body, whatever shape it arrived in."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            parts = [str(error[key]) for key in ("type", "message") if isinstance(error.get(key), str)]
            return ": ".join(parts)
    return "" if body is None else str(body)
