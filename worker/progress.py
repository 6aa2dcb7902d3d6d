"""A one-line progress bar on a terminal, and nothing at all when the stream is piped or redirected."""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 30
_REDRAW_EVERY = 0.1  # seconds; redrawing on every job would cost more than a recorded job itself


class Progress:
    def __init__(self, total: int | None, stream: TextIO, *, label: str = "jobs") -> None:
        self.total = total
        self.done = 0
        self._stream = stream
        self._label = label
        self._enabled = stream.isatty()
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._shown = False

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self._enabled and (now - self._drawn_at >= _REDRAW_EVERY or self.done == self.total):
            self._drawn_at = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.done / max(now - self._started, 1e-9)
        if self.total:
            filled = _WIDTH * self.done // self.total
            bar = f"[{'#' * filled}{'.' * (_WIDTH - filled)}] {self.done}/{self.total}"
        else:
            bar = f"{self.done}"
        self._stream.write(f"\r{bar} {self._label} {rate:,.0f}/s\x1b[K")
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the bar, so another line can be written to the terminal; it comes back at the next redraw."""
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False
