"""The Messages API's answer body read into a `ProviderReply`, without the anthropic SDK.

The live provider (`worker.providers.anthropic`) and the recorded one (`worker.providers.recorded`) both
read answers here, so a replayed answer bills exactly as the live one did; replay and demo never pay the
SDK's import (over a second of CPU).
"""

from __future__ import annotations

from typing import Any

from catalog import Usage
from worker.providers.base import ProviderReply, model_name

__all__ = ["MalformedAnswerError", "error_detail", "reply_from_body"]


class MalformedAnswerError(ValueError):
    """A body that is not a Messages API answer; the text names the fault (of the body only an error's own text)."""


def reply_from_body(body: object) -> ProviderReply:
    """A Messages API answer, as decoded from its JSON, as the pipeline sees it.

    Only the fields the reply needs are checked; any fault of their shape raises `MalformedAnswerError`.
    """
    if not isinstance(body, dict):
        raise MalformedAnswerError("it is not a JSON object")
    kind = body.get("type")
    if kind != "message":
        if kind == "error":
            raise MalformedAnswerError(f"it is an error ({error_detail(body) or 'no detail'})")
        raise MalformedAnswerError('its `type` is not "message"')
    stop_reason = body.get("stop_reason")
    if stop_reason is not None and not isinstance(stop_reason, str):
        raise MalformedAnswerError("its `stop_reason` is not a string")
    usage = body.get("usage")
    if not isinstance(usage, dict):
        raise MalformedAnswerError("it has no `usage`")
    return ProviderReply(
        text=_text_of(body.get("content")),
        stop_reason=stop_reason,
        usage=Usage(
            input_tokens=_token_count(usage, "input_tokens", required=True),
            output_tokens=_token_count(usage, "output_tokens", required=True),
            cache_creation_input_tokens=_token_count(usage, "cache_creation_input_tokens", required=False),
            cache_read_input_tokens=_token_count(usage, "cache_read_input_tokens", required=False),
        ),
        model=model_name(body.get("model")),
    )


def _text_of(content: object) -> str:
    """The text blocks joined; other blocks (thinking, tool use) are not part of the reply."""
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
    return "".join(texts)


def _token_count(usage: dict[str, Any], key: str, *, required: bool) -> int:
    """A usage field; the cache fields may be missing or null, meaning none."""
    value = usage.get(key)
    if value is None and not required:
        return 0
    # `type(...) is int` rather than isinstance: a JSON `true` is not a count.
    if type(value) is not int or value < 0:
        raise MalformedAnswerError(f"its `usage.{key}` is not a token count")
    return value


def error_detail(body: object) -> str:
    """`<error type>: <message>` from the API's error body, whatever shape it arrived in."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            parts = [str(error[key]) for key in ("type", "message") if isinstance(error.get(key), str)]
            return ": ".join(parts)
    return "" if body is None else str(body)
