"""The calibrated cascade at work: pairs in, labels out, tier by tier.

Tier ``t`` scores only the pairs the tiers below it did not accept; its probabilities are
calibrated by the calibrator ``calibrate`` fitted for that very model version (a calibrator for
another version is refused), and it accepts a pair when the calibrated confidence reaches its
threshold. Grade and confidence come from the decision rule ``calibrate`` fitted the thresholds
under (``decision`` in ``cascade.json``; :mod:`relforge.calibrate._decision`). The last tier
accepts every pair that reaches it (plain routing). In guaranteed mode each tier has a tested
threshold (``None``: it accepts nothing) and a pair that no tier accepts is labelled by the last
tier with ``accepted = false`` (the guarantee does not cover it; the review queue puts it
first).

A pair a tier **failed** to score (a remote server's error) is never labelled and never passed
up: the ``annotate`` step keeps its shard uncommitted and retries it on the next run.
Scorers are built on first need and kept for the run (a tier no pair reaches loads no model).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from relforge.annotate._ledger import Ledger
from relforge.bus import DataBus
from relforge.calibrate import Calibrator, TierModel, decide, load_tier_calibrator, resolve_tiers
from relforge.config import RelforgeConfig
from relforge.errors import ConfigError, ModelError
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event
from relforge.tiers import Pair, TierScorer

log = get_logger("annotate.cascade")


@dataclass
class Labelled:
    """The cascade's result for ``n`` pairs.

    Attributes:
        grade, probs, confidence: the deciding tier's calibrated answer (undefined where failed).
        tier: the deciding tier's position (-1 where failed).
        cost: the summed measured cost of every tier the pair visited.
        tokens: prompt tokens of the LLM tiers it visited.
        accepted: whether the deciding tier's threshold accepted it (always, in plain routing).
        failed: the pairs some tier could not score; ``errors`` says which tier and why.
    """

    grade: np.ndarray
    probs: np.ndarray
    confidence: np.ndarray
    tier: np.ndarray
    cost: np.ndarray
    tokens: np.ndarray
    accepted: np.ndarray
    failed: np.ndarray
    errors: list[str | None]


class Cascade:
    """The tiers of ``tiers.names`` with their calibrators and thresholds, as ``calibrate`` left them.

    Args:
        bus: the run's bus (``calibrators/``, ``models/``).
        config: the run's configuration (its tiers must be those ``calibrate`` calibrated).
        cascade: ``calibrators/cascade.json``.
        scale: the grade scale.
        catalog_texts: handed to each scorer's ``prepare_items`` when it is built.

    Raises:
        ConfigError: the configured tiers are not the calibrated ones (run ``calibrate`` again).
        ModelError: a tier's model is not the version its calibrator was fitted for.
    """

    def __init__(
        self,
        bus: DataBus,
        config: RelforgeConfig,
        cascade: dict[str, Any],
        scale: GradeScale,
        catalog_texts: Sequence[str] | None = None,
    ):
        self.config, self.scale, self.catalog_texts = config, scale, catalog_texts
        self.tiers: list[TierModel] = resolve_tiers(bus, config)
        calibrated = [t["name"] for t in cascade["tiers"]]
        if calibrated != [t.name for t in self.tiers]:
            raise ConfigError(f"the cascade was calibrated with tiers {calibrated}, tiers.names is now "
                              f"{[t.name for t in self.tiers]}: run `relforge calibrate` again")
        if cascade.get("grade_scale") != scale.names:
            raise ModelError(f"the cascade was calibrated on grades {cascade.get('grade_scale')}, the data's are {scale.names}")
        self.calibrators: list[Calibrator] = [load_tier_calibrator(bus, t.name, t.fingerprint)[0] for t in self.tiers]
        self.guaranteed = cascade.get("mode") == "guaranteed"
        # a cascade.json written before the rule was configurable used the argmax
        self.decision: str = cascade.get("decision", "most-probable")
        if self.guaranteed:
            self.thresholds: list[float | None] = list(cascade["guaranteed_thresholds"])
        else:  # T - 1 thresholds; None is "accept none" (inf), the last tier accepts all
            self.thresholds = [np.inf if t is None else float(t) for t in cascade["thresholds"]] + [0.0]
        self._scorers: dict[int, TierScorer] = {}

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tiers]

    def scorer(self, position: int) -> TierScorer:
        if position not in self._scorers:
            tier = self.tiers[position]
            log_event(log, "loading tier", tier=tier.name, backend=tier.backend, model=tier.ref)
            scorer = tier.scorer(self.scale, self.config)
            if self.catalog_texts is not None:
                scorer.prepare_items(self.catalog_texts)
            self._scorers[position] = scorer
        return self._scorers[position]

    def close(self) -> None:
        for scorer in self._scorers.values():
            scorer.close()
        self._scorers.clear()

    def _accepts(self, position: int, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(decides, accepted)``: which pairs this tier labels, and which of those its threshold accepts."""
        last = position == len(self.tiers) - 1
        threshold = self.thresholds[position]
        accepted = np.zeros(len(confidence), dtype=bool) if threshold is None else confidence >= threshold
        decides = np.ones(len(confidence), dtype=bool) if last else accepted
        return decides, accepted

    def label(self, pairs: Sequence[Pair], ledger: Ledger | None = None) -> Labelled:
        """Route ``pairs`` through the cascade (see the module docstring)."""
        n, k = len(pairs), self.scale.n
        out = Labelled(
            grade=np.full(n, -1, dtype=np.int8), probs=np.full((n, k), np.nan, dtype=np.float32),
            confidence=np.full(n, np.nan, dtype=np.float32), tier=np.full(n, -1, dtype=np.int8),
            cost=np.zeros(n, dtype=np.float32), tokens=np.zeros(n, dtype=np.int32),
            accepted=np.zeros(n, dtype=bool), failed=np.zeros(n, dtype=bool), errors=[None] * n,
        )
        open_ = np.ones(n, dtype=bool)
        for position, tier in enumerate(self.tiers):
            idx = np.flatnonzero(open_)
            if idx.size == 0:
                break
            start = time.perf_counter()
            scores = self.scorer(position).score([pairs[i] for i in idx])
            seconds = time.perf_counter() - start
            out.cost[idx] += scores.cost
            if scores.tokens is not None:
                out.tokens[idx] += scores.tokens
            bad = scores.failed
            if ledger is not None:
                ledger.add(tier.name, len(idx), seconds, float(scores.cost.sum()),
                           int(scores.tokens.sum()) if scores.tokens is not None else 0, int(bad.sum()))
            for j in np.flatnonzero(bad):
                out.errors[idx[j]] = f"{tier.name}: {scores.errors[j]}"
            out.failed[idx[bad]] = True
            open_[idx[bad]] = False
            ok = idx[~bad]
            if ok.size == 0:
                continue
            calibrated = self.calibrators[position].transform(scores.probs[~bad].astype(np.float64))
            grade, confidence = decide(calibrated, self.decision)
            decides, accepted = self._accepts(position, confidence)
            chosen = ok[decides]
            out.probs[chosen] = calibrated[decides]
            out.confidence[chosen] = confidence[decides]
            out.grade[chosen] = grade[decides]
            out.tier[chosen] = position
            out.accepted[chosen] = accepted[decides]
            open_[chosen] = False
        return out
