"""Rows of the results table: a figure, its target, met or missed; printed and written to docs/benchmarks.md."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BEGIN", "END", "Row", "Spec", "Target", "format_table", "markdown_table", "update_doc"]

BEGIN = "<!-- bench:begin (written by `make bench`; edit outside these markers) -->"
END = "<!-- bench:end -->"


@dataclass(frozen=True, slots=True)
class Target:
    """`figure <op> bound`, shown as e.g. `≥ 60%`."""

    op: str
    bound: float
    unit: str = ""

    def met(self, figure: float) -> bool:
        compare: Callable[[float, float], bool] = operator.ge if self.op == "≥" else operator.le
        return compare(figure, self.bound)

    def show(self) -> str:
        return f"{self.op} {_number(self.bound)}{self.unit}"


@dataclass(frozen=True, slots=True)
class Spec:
    """What a row measures, known before it runs (so a benchmark that fails still shows its rows)."""

    key: str
    title: str
    target: Target

    def measured(self, figure: float, detail: str) -> Row:
        return Row(self, figure, detail)

    def failed(self, error: str) -> Row:
        """A row without a figure; the error is kept to one line so that the table stays a table."""
        one_line = " / ".join(part.strip() for part in error.splitlines() if part.strip())
        return Row(self, None, one_line if len(one_line) <= 400 else one_line[:399] + "…")


@dataclass(frozen=True, slots=True)
class Row:
    spec: Spec
    figure: float | None
    """None when the benchmark failed to run; `detail` then says why."""
    detail: str

    @property
    def mark(self) -> str:
        if self.figure is None:
            return "error"
        return "met" if self.spec.target.met(self.figure) else "MISSED"

    def cells(self) -> list[str]:
        shown = "—" if self.figure is None else f"{_number(self.figure)}{self.spec.target.unit}"
        return [self.spec.key, self.spec.title, shown, self.spec.target.show(), self.mark, self.detail]


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


_HEADER = ["#", "benchmark", "figure", "target", "met?", "measured"]


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text table for the terminal, each row starting with its key (T1, T2 ...)."""
    lines = [_HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(_HEADER) - 1)]
    out = [
        "  ".join([*(cell.ljust(width) for cell, width in zip(line, widths, strict=False)), line[-1]]) for line in lines
    ]
    out.insert(1, "-" * max(len(line) for line in out))
    return "\n".join(line.rstrip() for line in out)


def markdown_table(rows: Sequence[Row]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(_HEADER), line(["---"] * len(_HEADER)), *(line(row.cells()) for row in rows)])


def update_doc(path: Path, generated: str) -> None:
    """Replace what lies between the markers, keeping the hand-written analysis around it."""
    block = f"{BEGIN}\n{generated.strip()}\n{END}"
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            head, _, rest = text.partition(BEGIN)
            _, _, tail = rest.partition(END)
            path.write_text(head + block + tail)
            return
        path.write_text(text.rstrip() + "\n\n" + block + "\n")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# Benchmarks\n\n{block}\n")
