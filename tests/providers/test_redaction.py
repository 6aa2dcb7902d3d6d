"""Provider text scrubbed of the job's prompt texts (docs/contract.md §11): no 20 consecutive characters survive,
in any form.
"""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.providers.classify import status_error, unexpected_error
from worker.providers.redaction import MAX_DETAIL, REDACTED, WINDOW, Redactor

pytestmark = pytest.mark.unit

KEY = "sk-ant-api03-0123456789abcdef"
# Quotes, a newline, a tab, backslashes, non-ASCII and an emoji: every character JSON escapes one way or another.
PROMPT = 'You are "Scout".\nAnswer in français, never with C:\\temp\\ paths — <b>&</b>\tthanks 🙂 ' + "x" * 10
LONG_PROMPT = "".join(f"Paragraph {n}: the quick brown fox jumps over the lazy dog {n * 7}. " for n in range(400))


def _forms(prompt: str) -> list[str]:
    """The prompt as a provider may quote it: plain, JSON-escaped with and without non-ASCII, as Go escapes HTML."""
    kept = orjson.dumps(prompt).decode()[1:-1]
    return [
        prompt,
        kept,
        json.dumps(prompt)[1:-1],
        kept.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),
    ]


def _leaks(text: str, prompt: str) -> list[str]:
    """Every 20-character stretch of `text` found in a form of `prompt`, by brute force (independent of the code)."""
    return [
        text[i : i + WINDOW]
        for i in range(len(text) - WINDOW + 1)
        if any(text[i : i + WINDOW] in form for form in _forms(prompt))
    ]


@pytest.mark.parametrize("form", range(4), ids=["plain", "json-kept", "json-ascii", "go-html"])
def test_a_quoted_prompt_in_any_escaped_form_is_replaced(form: int) -> None:
    quoted = _forms(PROMPT)[form]
    assert _leaks(quoted, PROMPT)  # the check itself sees the quote

    text = Redactor([KEY, None, PROMPT])(f'messages.0.content: "{quoted}" is not allowed', limit=None)

    assert _leaks(text, PROMPT) == []
    assert text.startswith("messages.0.content: ")
    assert REDACTED in text


def test_parts_of_a_prompt_longer_than_any_cut_are_replaced_and_the_rest_of_the_text_kept() -> None:
    # The provider quotes a stretch from the middle of a prompt far longer than the message limit.
    middle = LONG_PROMPT[10_000:10_250]
    text = Redactor([LONG_PROMPT])(f"unexpected token near: {middle} (request req_123)")

    assert _leaks(text, LONG_PROMPT) == []
    assert text.startswith("unexpected token near:")
    assert text.endswith(f"{REDACTED} (request req_123)")
    assert len(text) < 60


def test_a_stretch_shorter_than_the_window_is_kept() -> None:
    text = Redactor([PROMPT])("echo: " + PROMPT[:19])

    assert text == "echo: " + PROMPT[:19]


def test_ordinary_words_shared_with_a_prompt_are_kept_and_the_key_is_replaced_whole() -> None:
    prompt = "Summarise the notes about the invalid request that failed."
    text = Redactor([KEY, prompt])(f"invalid request: key {KEY} may not use this model")

    assert text == f"invalid request: key {REDACTED} may not use this model"


def test_a_prompt_holding_the_redaction_mark_cannot_bring_its_text_back() -> None:
    prompt = f"{REDACTED}{REDACTED}" + "0123456789" * 3
    text = Redactor([prompt])(f"bad: {prompt[:25]}ABCDEFGHIJ{prompt[15:40]}")

    assert _leaks(text, prompt) == []


def test_the_text_is_cut_to_the_limit_before_it_is_scrubbed() -> None:
    text = Redactor([PROMPT])("y" * 1000)

    assert text == "y" * (MAX_DETAIL - 1) + "…"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prompt=st.text(min_size=WINDOW, max_size=120),
    pieces=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 120), st.integers(0, 60), st.text(max_size=8)), max_size=6
    ),
)
def test_property_no_20_character_stretch_of_any_form_survives(
    prompt: str, pieces: list[tuple[int, int, int, str]]
) -> None:
    # The error text is random filler around random slices of the prompt's forms.
    forms = _forms(prompt)
    text = "".join(filler + forms[form][start : start + length] for form, start, length, filler in pieces)

    scrubbed = Redactor([prompt])(text, limit=None)

    assert _leaks(scrubbed, prompt) == []


def test_status_errors_scrub_the_whole_message_cut_to_the_limit() -> None:
    detail = "x" * 250 + LONG_PROMPT  # the quote starts before the cut and runs past it
    error = status_error("Ollama", 400, detail, {}, secrets=(None, LONG_PROMPT))

    assert error.message.startswith("Ollama answered HTTP 400: " + "x" * 250 + REDACTED)
    assert _leaks(error.message, LONG_PROMPT) == []


def test_unexpected_errors_scrub_the_prompt() -> None:
    error = unexpected_error("Anthropic", f"ValueError: {json.dumps(PROMPT)}", secrets=(KEY, PROMPT))

    assert _leaks(error.message, PROMPT) == []
