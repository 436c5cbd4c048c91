"""The cost ledger of an annotation run: the estimate before it, the actual spend during and after.

**Estimate** (before any pair is scored): for each tier, the pairs expected to reach it (the
candidates to label times the share of calibration pairs that reached it under the calibrated
routing, cross-fitted) times its measured cost per pair on the calibration pairs; summed, the
run's expected cost.

**Actual**: per tier, the pairs it scored, the wall seconds of its scoring calls, the cost its
scorer measured, and the prompt tokens (LLM tiers); the shards committed and the pairs labelled
or failed. Written to ``reports/annotate-ledger.json`` after every shard, so a long run can be
watched, and read back by nothing: each run has its own ledger (``annotate.max_budget`` bounds
one run's spend).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

LEDGER = "reports/annotate-ledger.json"


@dataclass
class TierSpend:
    pairs: int = 0
    seconds: float = 0.0
    cost: float = 0.0
    tokens: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "seconds": round(self.seconds, 3), "cost": self.cost, "tokens": self.tokens,
                "failed": self.failed, "pairs_per_second": round(self.pairs / self.seconds, 2) if self.seconds else None}


def estimate_cost(candidates: int, tiers: list[dict[str, Any]], shares: list[float]) -> dict[str, Any]:
    """The expected cost of labelling ``candidates`` pairs (see the module docstring).

    Args:
        candidates: pairs to label.
        tiers: ``cascade.json``'s tiers (``name``, ``mean_cost``).
        shares: per tier, the cross-fitted share of pairs it decides.

    Example:
        >>> e = estimate_cost(1000, [{"name": "a", "mean_cost": 0.001}, {"name": "b", "mean_cost": 0.1}], [0.8, 0.2])
        >>> e["tiers"]["b"]["pairs"], round(e["cost"], 3)
        (200.0, 21.0)
    """
    out: dict[str, Any] = {"candidates": candidates, "tiers": {}}
    reach = 1.0
    total = 0.0
    for tier, share in zip(tiers, shares):
        pairs = candidates * reach
        cost = pairs * float(tier["mean_cost"])
        out["tiers"][tier["name"]] = {"reach_share": reach, "pairs": pairs, "cost_per_pair": tier["mean_cost"],
                                      "cost": cost}
        total += cost
        reach = max(0.0, reach - share)
    out["cost"] = total
    return out


@dataclass
class Ledger:
    """The run's spend, per tier, and its progress."""

    tiers: list[str]
    estimate: dict[str, Any]
    max_budget: float | None
    shards_total: int
    shards_before: int
    spend: dict[str, TierSpend] = field(default_factory=dict)
    shards_committed: int = 0
    labelled: int = 0
    failed: int = 0
    stopped: str | None = None
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        for t in self.tiers:
            self.spend.setdefault(t, TierSpend())

    def add(self, tier: str, pairs: int, seconds: float, cost: float, tokens: int, failed: int) -> None:
        s = self.spend[tier]
        s.pairs += pairs
        s.seconds += seconds
        s.cost += cost
        s.tokens += tokens
        s.failed += failed

    @property
    def cost(self) -> float:
        return sum(s.cost for s in self.spend.values())

    @property
    def budget_reached(self) -> bool:
        return self.max_budget is not None and self.cost >= self.max_budget

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "max_budget": self.max_budget,
            "actual": {
                "cost": self.cost,
                "seconds": round(time.monotonic() - self.started, 2),
                "tiers": {t: s.as_dict() for t, s in self.spend.items()},
                "labelled": self.labelled,
                "failed": self.failed,
            },
            "shards": {"total": self.shards_total, "committed_before": self.shards_before,
                       "committed_now": self.shards_committed},
            "stopped": self.stopped,
        }
