"""How a message or a log line quotes a value taken from a job (docs/contract.md §6): at most 64 of its characters.

A job's strings may be half a megabyte long; quoting one whole would make every message, log line and
result that names it as big, so a value is quoted by its head, with its length said when it was cut.
Pure, like the rest of the catalog, so the gate (here) and the worker's door share it.
"""

from __future__ import annotations

__all__ = ["MAX_QUOTE_CHARS", "clipped", "quote"]

#: docs/contract.md §6: an error message quotes at most 64 characters of any value taken from the job.
MAX_QUOTE_CHARS = 64


def quote(value: str) -> str:
    """`value` in quotes (Python's repr, so control characters show escaped), cut to 64 characters with its length.

    `'gpt-4o'`, or for a longer value `'xxxx…'… (524,288 characters)`.
    """
    if len(value) <= MAX_QUOTE_CHARS:
        return repr(value)
    return f"{value[:MAX_QUOTE_CHARS]!r}… ({len(value):,} characters)"


def clipped(value: str | None) -> str | None:
    """`value` for a log field: whole up to 64 characters, else its first 63 and `…`."""
    if value is None or len(value) <= MAX_QUOTE_CHARS:
        return value
    return value[: MAX_QUOTE_CHARS - 1] + "…"
