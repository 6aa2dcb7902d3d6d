"""Stored results priced under another catalog, one result at a time: what `agent-worker reprice` adds up.

"Before" is what each run was billed (its stored `billing.billedTokens`). "After" is what the new catalog
would bill for the same run, decided by the catalog's own gate and billing (`catalog.gate`, `catalog.bill`):

- A run that reached a provider (completed, failed, timed out) is gated again with its tier and
  requested model. Allowed, on the model it ran on: its recorded usage billed with the new multiplier.
  Refused: 0 (counted as `refused`). Allowed but on another model (the tier's default changed): 0, and
  counted as `rerouted`, since the other model's usage cannot be known.
- A run the gate refused before (`unknown_tier`, `unknown_model`, `model_not_allowed`) is gated again:
  allowed now, it is counted as `newlyAllowed` and bills 0 (no provider was called, so no usage is known).
- Any other rejection (`invalid_job`, `input_too_large`, `quota_exceeded`) bills 0 before and after.

Memory stays flat: each result is read, added to its group's totals and dropped. Gate decisions are
cached per (tier, requested model), the only inputs of the pure gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from catalog import Allowed, Catalog, Denied, bill, gate, multiplier_text
from worker.contract import ErrorCode, usage_from_wire
from worker.report import difference_cells, render_table, tier_order_key

__all__ = ["GroupBy", "Repricer", "Tally"]

GroupBy = Literal["tier", "model", "tier,model"]
# The codes of a gate refusal (docs/contract.md §3): a run the old catalog refused at the gate.
_GATE_CODES = frozenset({ErrorCode.UNKNOWN_TIER, ErrorCode.UNKNOWN_MODEL, ErrorCode.MODEL_NOT_ALLOWED})
_NONE = "-"


@dataclass(slots=True)
class Tally:
    runs: int = 0
    before: int = 0
    after: int = 0
    refused: int = 0
    newly_allowed: int = 0
    rerouted: int = 0
    multipliers_before: set[str] = field(default_factory=set)
    multipliers_after: set[str] = field(default_factory=set)

    @property
    def difference(self) -> int:
        return self.after - self.before

    def merge(self, other: Tally) -> None:
        self.runs += other.runs
        self.before += other.before
        self.after += other.after
        self.refused += other.refused
        self.newly_allowed += other.newly_allowed
        self.rerouted += other.rerouted
        self.multipliers_before |= other.multipliers_before
        self.multipliers_after |= other.multipliers_after

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "billedBefore": self.before,
            "billedAfter": self.after,
            "difference": self.difference,
            "refused": self.refused,
            "newlyAllowed": self.newly_allowed,
            "rerouted": self.rerouted,
            "multipliersBefore": sorted(self.multipliers_before),
            "multipliersAfter": sorted(self.multipliers_after),
        }


class Repricer:
    """Feed it result bodies with `add`; read the totals per group, per tier and overall."""

    def __init__(self, catalog: Catalog, by: GroupBy = "tier,model") -> None:
        self.catalog = catalog
        self.by = by
        self.groups: dict[tuple[str, ...], Tally] = {}
        self.unreadable = 0
        self._gates: dict[tuple[str, str | None], Allowed | Denied] = {}

    def add(self, body: bytes) -> None:
        try:
            result = orjson.loads(body)
            self._add(result)
        except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError, ValueError):
            # Not a result of this contract (another writer on the stream): counted, never priced.
            self.unreadable += 1

    def _add(self, result: dict[str, Any]) -> None:
        tier, requested, model = result["tier"], result["requestedModel"], result["model"]
        billing = result["billing"]
        key = self._key(tier or _NONE, model or requested or _NONE)
        tally = self.groups.get(key)
        if tally is None:
            tally = self.groups[key] = Tally()
        tally.runs += 1
        tally.before += billing["billedTokens"]
        if model is not None:
            tally.multipliers_before.add(billing["multiplier"])
        if result["status"] == "rejected":
            code = result["error"]["code"]
            # An unknown model longer than the result echoes (256 characters) reads as null: not the default.
            knowable = not (code == "unknown_model" and requested is None)
            if code in _GATE_CODES and knowable and isinstance(self._gate(tier, requested), Allowed):
                tally.newly_allowed += 1
            return
        verdict = self._gate(tier, requested)
        if isinstance(verdict, Denied):
            # Counted when the run had reached a model; one that never did (say, out of deliveries first) billed 0.
            tally.refused += model is not None
            return
        if model is not None and verdict.model.id != model:
            tally.rerouted += 1
            return
        usage = result["usage"]
        charged = bill(usage_from_wire(usage), verdict.model.multiplier)
        tally.after += charged.total
        tally.multipliers_after.add(multiplier_text(verdict.model.multiplier))

    def _gate(self, tier: object, requested: object) -> Allowed | Denied:
        if not isinstance(tier, str):
            return Denied("unknown_tier", "The run has no tier.")
        wanted = requested if isinstance(requested, str) else None
        verdict = self._gates.get((tier, wanted))
        if verdict is None:
            verdict = self._gates[(tier, wanted)] = gate(self.catalog, tier, wanted)
        return verdict

    def _key(self, tier: str, model: str) -> tuple[str, ...]:
        if self.by == "tier":
            return (tier,)
        if self.by == "model":
            return (model,)
        return (tier, model)

    # Reading the totals.

    @property
    def runs(self) -> int:
        return sum(tally.runs for tally in self.groups.values())

    def sorted_groups(self) -> list[tuple[tuple[str, ...], Tally]]:
        by_tier = tier_order_key([tier.name for tier in self.catalog.tiers_by_rank()])
        if self.by == "model":
            return sorted(self.groups.items())
        return sorted(self.groups.items(), key=lambda item: (by_tier(item[0][0]), item[0][1:]))

    def per_tier(self) -> list[tuple[str, Tally]]:
        tiers: dict[str, Tally] = {}
        for key, tally in self.sorted_groups():
            tiers.setdefault(key[0], Tally()).merge(tally)
        return list(tiers.items())

    def total(self) -> Tally:
        total = Tally()
        for tally in self.groups.values():
            total.merge(tally)
        return total

    def columns(self) -> Sequence[str]:
        return ("tier",) if self.by == "tier" else ("model",) if self.by == "model" else ("tier", "model")

    def to_json(self) -> dict[str, Any]:
        names = self.columns()
        return {
            "catalog": self.catalog.source,
            "by": self.by,
            "runs": self.runs,
            "unreadable": self.unreadable,
            "groups": [{**dict(zip(names, key, strict=True)), **t.to_json()} for key, t in self.sorted_groups()],
            "total": self.total().to_json(),
        }

    def report(self) -> str:
        """Before, after and difference per group (with multipliers and runs of unknown usage), then the totals."""
        names = list(self.columns())
        headers = [*names, "runs", "x before", "x after", "billed before", "billed after", "difference", "change"]
        headers += ["refused", "newly allowed", "rerouted"]
        rows = [[*key, *_cells(tally)] for key, tally in self.sorted_groups()]
        total = self.total()
        rows.append(["total", *[""] * (len(names) - 1), *_cells(total, multipliers=False)])
        numbers = range(len(names), len(headers))
        text = (
            f"Billed tokens of {total.runs:,} stored runs: as billed, and under {self.catalog.source}\n"
            + render_table(headers, rows, right=[i for i in numbers if headers[i] not in ("x before", "x after")])
        )
        if self.by == "tier,model":
            per_tier = render_table(
                ["tier", "runs", "billed before", "billed after", "difference", "change"],
                [[tier, f"{t.runs:,}", *difference_cells(t.before, t.after)] for tier, t in self.per_tier()]
                + [["total", f"{total.runs:,}", *difference_cells(total.before, total.after)]],
                right=range(1, 6),
            )
            text += f"\n\nBy tier\n{per_tier}"
        if total.refused or total.newly_allowed or total.rerouted:
            text += (
                "\n\nrefused: runs billed before that the new catalog refuses (billed 0 after); newly allowed: runs "
                "refused before that it allows (usage unknown, not priced); rerouted: runs it sends to another "
                "model (usage unknown, not priced)."
            )
        if self.unreadable:
            text += f"\n\n{self.unreadable:,} messages on the results subjects were not results and were skipped."
        return text


def _cells(tally: Tally, *, multipliers: bool = True) -> list[str]:
    return [
        f"{tally.runs:,}",
        (",".join(sorted(tally.multipliers_before)) or _NONE) if multipliers else "",
        (",".join(sorted(tally.multipliers_after)) or _NONE) if multipliers else "",
        *difference_cells(tally.before, tally.after),
        f"{tally.refused:,}",
        f"{tally.newly_allowed:,}",
        f"{tally.rerouted:,}",
    ]
