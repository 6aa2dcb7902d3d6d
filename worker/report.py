"""Plain-text tables of results for people: the demo's run table, billing summaries and catalog comparisons.

Numbers are exact integers with thousands separators; multipliers are the results' own decimal strings.
Tiers are listed in the order given (the catalog's rank order), then any other tier alphabetically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from catalog import multiplier_text
from worker.result import RunResult

__all__ = [
    "DeadLetterRow",
    "comparison_report",
    "difference_cells",
    "render_table",
    "results_table",
    "summary_report",
    "tier_order_key",
    "tier_totals",
]

_NONE = "-"


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """A job that got no result because it was dead-lettered, shown in the run table by its reason."""

    run: str
    reason: str


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, right: Iterable[int] = ()) -> str:
    """Columns padded to their widest cell; the columns numbered in `right` are right-aligned (numbers)."""
    right_aligned = set(right)
    table = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = (
            c.rjust(w) if i in right_aligned else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(table[0]), rule, *(line(row) for row in table[1:])])


def _n(value: int) -> str:
    return f"{value:,}"


def _raw_input(result: RunResult) -> int:
    return result.usage.counts().raw_input


def _multiplier(result: RunResult) -> str:
    return _NONE if result.model is None else multiplier_text(result.billing.multiplier)


def results_table(items: Sequence[RunResult | DeadLetterRow]) -> str:
    """One row per job: run, tier, requested and resolved model, status, raw tokens, multiplier, billed, error."""
    headers = ["run", "tier", "requested", "model", "status", "raw in", "raw out", "x", "billed", "error"]
    rows = []
    for item in items:
        if isinstance(item, DeadLetterRow):
            rows.append([item.run, _NONE, _NONE, _NONE, "dead-lettered", "0", "0", _NONE, "0", item.reason])
            continue
        rows.append(
            [
                item.run_id,
                item.tier or _NONE,
                item.requested_model or _NONE,
                item.model or _NONE,
                item.status,
                _n(_raw_input(item)),
                _n(item.usage.output_tokens),
                _multiplier(item),
                _n(item.billing.billed_tokens),
                _NONE if item.error is None else item.error.code.value,
            ]
        )
    return render_table(headers, rows, right=(5, 6, 7, 8))


@dataclass(slots=True)
class _Group:
    jobs: int = 0
    raw_input: int = 0
    raw_output: int = 0
    billed: int = 0
    completed: int = 0
    multipliers: set[str] = field(default_factory=set)

    def add(self, result: RunResult) -> None:
        self.jobs += 1
        self.completed += result.status == "completed"
        self.raw_input += _raw_input(result)
        self.raw_output += result.usage.output_tokens
        self.billed += result.billing.billed_tokens
        if result.model is not None:
            self.multipliers.add(_multiplier(result))

    def merge(self, other: _Group) -> None:
        self.jobs += other.jobs
        self.completed += other.completed
        self.raw_input += other.raw_input
        self.raw_output += other.raw_output
        self.billed += other.billed

    @property
    def multiplier(self) -> str:
        return ",".join(sorted(self.multipliers)) or _NONE


def tier_order_key(tier_order: Sequence[str]) -> Callable[[str], tuple[int, str]]:
    """Sort key: tiers in the order given, then any other tier alphabetically."""
    rank = {tier: i for i, tier in enumerate(tier_order)}
    return lambda tier: (rank.get(tier, len(rank)), tier)


def _grouped(results: Iterable[RunResult], tier_order: Sequence[str]) -> dict[tuple[str, str], _Group]:
    groups: dict[tuple[str, str], _Group] = {}
    for result in results:
        groups.setdefault((result.tier or _NONE, result.model or _NONE), _Group()).add(result)
    by_tier = tier_order_key(tier_order)
    return dict(sorted(groups.items(), key=lambda item: (by_tier(item[0][0]), item[0][1])))


def _by_tier(groups: dict[tuple[str, str], _Group]) -> dict[str, _Group]:
    tiers: dict[str, _Group] = {}
    for (tier, _model), group in groups.items():
        tiers.setdefault(tier, _Group()).merge(group)
    return tiers


def _tier_rows(groups: dict[tuple[str, str], _Group]) -> str:
    tiers = _by_tier(groups)
    total = _Group()
    for group in tiers.values():
        total.merge(group)
    return render_table(
        ["tier", "jobs", "completed", "raw in", "raw out", "billed"],
        (
            [tier, _n(g.jobs), _n(g.completed), _n(g.raw_input), _n(g.raw_output), _n(g.billed)]
            for tier, g in [*tiers.items(), ("total", total)]
        ),
        right=(1, 2, 3, 4, 5),
    )


def tier_totals(results: Sequence[RunResult], tier_order: Sequence[str]) -> str:
    """Jobs, completed jobs, raw and billed tokens per tier, and the grand total."""
    return _tier_rows(_grouped(results, tier_order))


def summary_report(results: Sequence[RunResult], tier_order: Sequence[str]) -> str:
    """Billed tokens per tier and model, then per tier, then the grand total."""
    groups = _grouped(results, tier_order)
    detail = render_table(
        ["tier", "model", "jobs", "raw in", "raw out", "x", "billed"],
        (
            [tier, model, _n(g.jobs), _n(g.raw_input), _n(g.raw_output), g.multiplier, _n(g.billed)]
            for (tier, model), g in groups.items()
        ),
        right=(2, 3, 4, 5, 6),
    )
    return f"Billed tokens by tier and model\n{detail}\n\nBilled tokens by tier\n{_tier_rows(groups)}"


def _change(before: int, after: int) -> str:
    if before == 0:
        return _NONE if after == 0 else "new"
    return f"{(after - before) * 100 / before:+.1f}%"


def comparison_report(
    before: Sequence[RunResult], after: Sequence[RunResult], tier_order: Sequence[str], labels: tuple[str, str]
) -> str:
    """Before, after and difference of billed tokens per tier and model, then per tier and in total.

    `before[i]` and `after[i]` are the same job under the two catalogs; jobs whose status or model
    differ between them are listed by run id after the tables.
    """
    old, new = _grouped(before, tier_order), _grouped(after, tier_order)
    by_tier = tier_order_key(tier_order)
    keys = sorted(set(old) | set(new), key=lambda k: (by_tier(k[0]), k[1]))
    empty = _Group()
    rows = []
    for tier, model in keys:
        b, a = old.get((tier, model), empty), new.get((tier, model), empty)
        rows.append(
            [tier, model, _jobs(b.jobs, a.jobs), b.multiplier, a.multiplier, *difference_cells(b.billed, a.billed)]
        )
    detail = render_table(
        ["tier", "model", "jobs", "x before", "x after", "billed before", "billed after", "difference", "change"],
        rows,
        right=(2, 5, 6, 7, 8),
    )
    old_tiers, new_tiers = _by_tier(old), _by_tier(new)
    tiers = sorted(set(old_tiers) | set(new_tiers), key=by_tier)
    totals = [old_tiers.get(t, empty).billed for t in tiers], [new_tiers.get(t, empty).billed for t in tiers]
    per_tier = render_table(
        ["tier", "billed before", "billed after", "difference", "change"],
        [
            *([tier, *difference_cells(b, a)] for tier, b, a in zip(tiers, *totals, strict=True)),
            ["total", *difference_cells(sum(totals[0]), sum(totals[1]))],
        ],
        right=(1, 2, 3, 4),
    )
    text = (
        f"Billed tokens, before ({labels[0]}) and after ({labels[1]}), by tier and model\n{detail}\n\n"
        f"By tier\n{per_tier}"
    )
    changed = [b.run_id for b, a in zip(before, after, strict=True) if (b.status, b.model) != (a.status, a.model)]
    if changed:
        text += f"\n\nJobs whose status or model differ ({len(changed)}): " + ", ".join(changed[:20])
        text += ", …" if len(changed) > 20 else ""
    return text


def _jobs(before: int, after: int) -> str:
    return _n(before) if before == after else f"{before}->{after}"


def difference_cells(before: int, after: int) -> list[str]:
    """Billed before, after, the difference and the change in percent, as table cells."""
    return [_n(before), _n(after), f"{after - before:+,}", _change(before, after)]
